package main

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseSettingsDefaults(t *testing.T) {
	s, err := parseSettings(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if s.terminals != 10000 || s.instances != 3 || s.pool != 10 || s.backlogRows != 5000 || s.rate != 0.02 || s.duration != time.Minute || s.db != "" {
		t.Fatalf("defaults = %+v", s)
	}
}

func TestParseSettingsReadsEveryKnob(t *testing.T) {
	s, err := parseSettings(env(map[string]string{"HOST_DB": "postgres://u@127.0.0.1/db", "HOST_TERMINALS": "200",
		"HOST_RATE": "0.5", "HOST_DURATION": "10s", "HOST_BACKLOG_ROWS": "0", "HOST_POOL": "4"}))
	if err != nil {
		t.Fatal(err)
	}
	if s.terminals != 200 || s.rate != 0.5 || s.duration != 10*time.Second || s.backlogRows != 0 || s.pool != 4 || s.db == "" {
		t.Fatalf("settings = %+v", s)
	}
}

func TestParseSettingsNamesTheBadValue(t *testing.T) {
	for _, c := range []struct{ name, val string }{
		{"HOST_DB", "mysql://x"}, {"HOST_TERMINALS", "0"}, {"HOST_RATE", "-1"}, {"HOST_RATE", "NaN"},
		{"HOST_DURATION", "soon"}, {"HOST_POOL", "ten"}, {"HOST_TIMEOUT", "-5s"},
	} {
		_, err := parseSettings(env(map[string]string{c.name: c.val}))
		if err == nil || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s=%q: err = %v, want one naming %s", c.name, c.val, err, c.name)
		}
	}
}

func TestCountWindows(t *testing.T) {
	start := time.Unix(1000, 0)
	var at []time.Time
	// 10 answers a second for 10 s, then 20 a second for 10 s, and some
	// outside the acting window that must not count.
	for i := range 100 {
		at = append(at, start.Add(time.Duration(i)*100*time.Millisecond))
	}
	for i := range 200 {
		at = append(at, start.Add(10*time.Second+time.Duration(i)*50*time.Millisecond))
	}
	at = append(at, start.Add(-time.Second), start.Add(25*time.Second))
	w := countWindows(at, start, 10*time.Second, 20*time.Second)
	if w.during != 10 || w.after != 20 {
		t.Fatalf("windows = %+v, want 10 during and 20 after", w)
	}
	if w := countWindows(at, start, 0, 20*time.Second); w.during != 0 || w.after != 15 {
		t.Fatalf("no backlog: windows = %+v, want 0 and 15", w)
	}
}
