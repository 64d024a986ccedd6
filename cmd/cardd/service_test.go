package main

import (
	"reflect"
	"testing"
)

// TestEventLevel: the Windows service files each log line in the event log
// at the line's own level, text or JSON, so filtering by level works.
func TestEventLevel(t *testing.T) {
	for _, c := range []struct {
		line string
		want byte
	}{
		{`time=2026-01-01T00:00:00Z level=ERROR msg="store failed"`, 'E'},
		{`time=2026-01-01T00:00:00Z level=WARN msg="no smart card service; retrying"`, 'W'},
		{`time=2026-01-01T00:00:00Z level=INFO msg="cardd starting"`, 'I'},
		{`{"time":"2026-01-01T00:00:00Z","level":"ERROR","msg":"x"}`, 'E'},
		{`{"time":"2026-01-01T00:00:00Z","level":"WARN","msg":"x"}`, 'W'},
		{`cardd: config: mode = "door": door mode runs on Linux only`, 'I'},
	} {
		if got := eventLevel([]byte(c.line)); got != c.want {
			t.Errorf("eventLevel(%s) = %c, want %c", c.line, got, c.want)
		}
	}
}

// TestSplitLines: one event per line, none empty, no carriage returns.
func TestSplitLines(t *testing.T) {
	got := splitLines([]byte("a\r\n\nb\n"))
	if want := []string{"a", "b"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("splitLines = %q, want %q", got, want)
	}
}
