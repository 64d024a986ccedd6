// The Windows service's log helpers (service_windows.go), here so their
// tests run on every platform.

package main

import (
	"bytes"
	"strings"
)

// eventLevel is the event log level of one of cardd's log lines, text
// (level=WARN) or JSON ("level":"WARN"): 'E' error, 'W' warning, 'I' the
// rest, so the Event Viewer's filters by level work on cardd's lines.
func eventLevel(line []byte) byte {
	for _, l := range []struct {
		word  string
		level byte
	}{{"ERROR", 'E'}, {"WARN", 'W'}} {
		if bytes.Contains(line, []byte("level="+l.word)) || bytes.Contains(line, []byte(`"level":"`+l.word+`"`)) {
			return l.level
		}
	}
	return 'I'
}

// splitLines splits what a logger wrote at once into its lines, without
// empty ones: the event log takes one event per line.
func splitLines(p []byte) []string {
	var out []string
	for _, l := range strings.Split(string(p), "\n") {
		if l = strings.TrimRight(l, "\r"); l != "" {
			out = append(out, l)
		}
	}
	return out
}
