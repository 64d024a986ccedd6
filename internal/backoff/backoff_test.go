package backoff

import (
	"testing"
	"time"
)

// Steps double from Base, stop at Max, and Reset starts again from Base.
func TestStepsDoubleCapAndReset(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: 500 * time.Millisecond,
		Jitter: func(time.Duration) time.Duration { return 0 }}
	want := []time.Duration{100, 200, 400, 500, 500}
	for i, w := range want {
		w *= time.Millisecond
		if got := b.Next(); got != w/2 {
			t.Errorf("wait %d = %v, want %v (half the step with no jitter)", i, got, w/2)
		}
		if b.Step() != w {
			t.Errorf("step %d = %v, want %v", i, b.Step(), w)
		}
	}
	b.Reset()
	if b.Step() != 0 {
		t.Errorf("step after Reset = %v, want 0", b.Step())
	}
	if got := b.Next(); got != 50*time.Millisecond {
		t.Errorf("first wait after Reset = %v, want 50ms", got)
	}
}

// The jitter is asked for [0, step/2] and added to step/2, so the wait
// spans [step/2, step] and never exceeds the cap.
func TestJitterRange(t *testing.T) {
	var asked time.Duration
	b := Backoff{Base: time.Second, Max: 2 * time.Minute,
		Jitter: func(n time.Duration) time.Duration { asked = n; return n - 1 }}
	if got := b.Next(); got != time.Second {
		t.Errorf("wait with the largest jitter = %v, want the whole step 1s", got)
	}
	if asked != 500*time.Millisecond+1 {
		t.Errorf("jitter asked for n = %v, want 500ms+1ns", asked)
	}
	// The default jitter stays within the same bounds.
	d := Backoff{Base: 250 * time.Millisecond, Max: 30 * time.Second}
	for i := 0; i < 200; i++ {
		w := d.Next()
		if w < d.Step()/2 || w > d.Step() {
			t.Fatalf("wait %v outside [%v, %v]", w, d.Step()/2, d.Step())
		}
	}
	if d.Step() != 30*time.Second {
		t.Errorf("step after 200 failures = %v, want the cap 30s", d.Step())
	}
}

// A cap below Base wins: a caller that asks for short waits gets them.
func TestMaxBelowBase(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 20 * time.Millisecond,
		Jitter: func(time.Duration) time.Duration { return 0 }}
	if got := b.Next(); got != 10*time.Millisecond {
		t.Errorf("wait = %v, want 10ms (half of the 20ms cap)", got)
	}
}

// A tiny step still works: rand.N must never be asked for zero.
func TestTinyStep(t *testing.T) {
	b := Backoff{Base: 1, Max: 1}
	if got := b.Next(); got < 0 || got > 1 {
		t.Errorf("wait = %v, want 0 or 1ns", got)
	}
}
