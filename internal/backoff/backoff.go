// Package backoff is the capped, doubling, jittered wait between attempts
// at something outside the process: pcscd, the host, a printer. It returns
// durations and never sleeps, so the caller keeps its own select on ctx and
// wake-ups, and a test needs no clock.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff doubles from Base to Max after each failure, and waits a random
// time in [d/2, d] for the current step d ("equal jitter"): many terminals
// that lost the same host do not all come back in the same millisecond, and
// none waits less than half the step. The zero value of the state is ready;
// Base and Max must be set. It is not safe for concurrent use: each retry
// loop owns one.
type Backoff struct {
	// Base is the first step after a success or Reset.
	Base time.Duration
	// Max caps the step; it wins over Base when smaller.
	Max time.Duration
	// Jitter returns a random duration in [0, n); nil means math/rand/v2.
	// Tests set it to get exact waits.
	Jitter func(n time.Duration) time.Duration

	step time.Duration
}

// Next records one more failure and returns how long to wait before the
// next attempt.
func (b *Backoff) Next() time.Duration {
	b.step = min(max(2*b.step, b.Base), b.Max)
	jitter := b.Jitter
	if jitter == nil {
		jitter = rand.N[time.Duration]
	}
	// +1 so that n is never zero (rand.N panics) and d itself is reachable.
	return b.step/2 + jitter(b.step/2+1)
}

// Step is the current step: the upper bound of the last wait Next returned,
// zero after Reset. Logs show it.
func (b *Backoff) Step() time.Duration { return b.step }

// Reset forgets the failures: an attempt succeeded, so the next failure
// starts again from Base.
func (b *Backoff) Reset() { b.step = 0 }
