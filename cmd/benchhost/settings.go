package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// settings are the run's environment variables, checked.
type settings struct {
	db                         string
	terminals, instances, pool int
	cards, credits, workers    int
	backlogRows                int
	rate                       float64
	duration, timeout          time.Duration
}

// parseSettings reads the HOST_* variables through getenv; a bad value is
// refused with its name.
func parseSettings(getenv func(string) string) (settings, error) {
	s := settings{db: getenv("HOST_DB")}
	if s.db != "" && !strings.HasPrefix(s.db, "postgres://") && !strings.HasPrefix(s.db, "postgresql://") {
		return s, fmt.Errorf("HOST_DB: want a postgres:// URL")
	}
	for _, v := range []struct {
		name     string
		dst      *int
		def, min int
	}{
		{"HOST_TERMINALS", &s.terminals, 10000, 1},
		{"HOST_INSTANCES", &s.instances, 3, 1},
		{"HOST_POOL", &s.pool, 10, 1},
		{"HOST_CARDS", &s.cards, 1000, 1},
		{"HOST_CREDITS", &s.credits, 4, 0},
		{"HOST_WORKERS", &s.workers, 8, 1},
		{"HOST_BACKLOG_ROWS", &s.backlogRows, 5000, 0},
	} {
		*v.dst = v.def
		if raw := getenv(v.name); raw != "" {
			n, err := strconv.Atoi(raw)
			if err != nil || n < v.min {
				return s, fmt.Errorf("%s=%q: want a whole number, %d or more", v.name, raw, v.min)
			}
			*v.dst = n
		}
	}
	s.rate = 0.02
	if raw := getenv("HOST_RATE"); raw != "" {
		r, err := strconv.ParseFloat(raw, 64)
		if err != nil || !(r > 0 && r <= 100) {
			return s, fmt.Errorf("HOST_RATE=%q: want actions per second of each terminal, like 0.02 (more than 0, at most 100)", raw)
		}
		s.rate = r
	}
	for _, v := range []struct {
		name string
		dst  *time.Duration
		def  time.Duration
	}{{"HOST_DURATION", &s.duration, 60 * time.Second}, {"HOST_TIMEOUT", &s.timeout, 20 * time.Minute}} {
		*v.dst = v.def
		if raw := getenv(v.name); raw != "" {
			d, err := time.ParseDuration(raw)
			if err != nil || d <= 0 {
				return s, fmt.Errorf("%s=%q: want a duration like 60s", v.name, raw)
			}
			*v.dst = d
		}
	}
	return s, nil
}
