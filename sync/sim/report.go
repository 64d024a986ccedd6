package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	gosync "sync"
	"time"

	hostsync "github.com/cardd/cardd/sync"
)

// Request kinds, as the report names them.
const (
	KindHeartbeat = "heartbeat"
	KindPull      = "pull"
	KindJournal   = "journal"
	KindCredits   = "credits"   // a card's pending credits, asked on tap
	KindAuthorize = "authorize" // load authorize
	KindComplete  = "complete"  // load complete
)

// kinds is every kind, in the order the text report lists them.
var kinds = []string{KindHeartbeat, KindPull, KindJournal, KindCredits, KindAuthorize, KindComplete, KindBacklog}

// CodeUnreachable counts, among a kind's failures, the requests that got no
// answer from their instance (hostsync.ErrUnreachable).
const CodeUnreachable = "unreachable"

// KindReport is what happened to the requests of one kind.
type KindReport struct {
	Requests int64 `json:"requests"`
	OK       int64 `json:"ok"`
	// Refused counts the host's refusals by hostapi code: an answer, so
	// not a failure (credit_busy is the host doing its job).
	Refused map[string]int64 `json:"refused,omitempty"`
	// Failed counts requests that got no usable answer, by cause
	// (CodeUnreachable; "500 internal", status and code, for a 5xx;
	// "error" for an answer that did not decode;
	// "bad_answer" for an authorization without a usable MAC2).
	Failed map[string]int64 `json:"failed,omitempty"`
	// FailedOver counts the requests another instance answered after the
	// one first tried failed them (no answer, or a 5xx): what failover
	// saved. Each such failure is counted in Failed too.
	FailedOver int64 `json:"failed_over"`
	// Latencies of every answered request (OK or refused), milliseconds.
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`
}

// LoadReport is what the fleet's taps did to the cards.
type LoadReport struct {
	Taps       int64 `json:"taps"`
	NoCredit   int64 `json:"no_credit"`   // the card had nothing to load
	Applied    int64 `json:"applied"`     // CREDIT FOR LOAD answered a TAC
	AppliedFen int64 `json:"applied_fen"` // their sum, fen
	Consumed   int64 `json:"consumed"`    // completions the host answered consumed
	NotApplied int64 `json:"not_applied"` // authorizations voided by a probe
	// Doubled counts credit ids a card applied more than once: always 0
	// unless the host broke money rule 4.
	Doubled int64 `json:"doubled"`
	// Unsettled counts loads applied on a card whose completion no
	// instance acknowledged before the drain ended (they stay at the
	// host as open authorizations).
	Unsettled int64 `json:"unsettled"`
	// CardErrors counts taps the card itself refused (a MAC2 it did not
	// accept, a balance over its limit).
	CardErrors int64 `json:"card_errors"`
}

// ReplayReport is what the instances answered to captured requests sent
// again verbatim.
type ReplayReport struct {
	Sent int64 `json:"sent"`
	// Refused counts 401 unauthorized answers that name the reused nonce.
	Refused int64 `json:"refused"`
	// Accepted counts replays an instance answered 2xx: always 0 unless
	// the nonce rule is broken.
	Accepted int64 `json:"accepted"`
	// Other counts any other answer, by status or CodeUnreachable.
	Other map[string]int64 `json:"other,omitempty"`
}

// Report is the outcome of a run, as JSON (WriteJSON) or text (WriteText).
type Report struct {
	Terminals int     `json:"terminals"`
	Cards     int     `json:"cards"`
	Hosts     int     `json:"hosts"`
	Seconds   float64 `json:"seconds"` // the run, its drain included
	Requests  int64   `json:"requests"`
	// RequestsPerSecond is the answered requests per second held over
	// Seconds, the backlog's included.
	RequestsPerSecond float64               `json:"requests_per_second"`
	Kinds             map[string]KindReport `json:"kinds"`
	Loads             LoadReport            `json:"loads"`
	Replay            *ReplayReport         `json:"replay,omitempty"`
	Backlog           *BacklogReport        `json:"backlog,omitempty"`
	// Captured are the signed requests recorded (Config.Capture), to
	// Replay; not part of the JSON.
	Captured []Captured `json:"-"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes a summary for people: one line per request kind.
func (r *Report) WriteText(w io.Writer) error {
	var err error
	p := func(format string, a ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, a...)
		}
	}
	p("fleet: %d terminals, %d cards, %d host instances, %.1f s: %d requests answered, %.1f/s held\n",
		r.Terminals, r.Cards, r.Hosts, r.Seconds, r.Requests, r.RequestsPerSecond)
	p("%-10s %9s %9s %9s %9s %9s %9s %9s\n", "kind", "requests", "ok", "refused", "failed", "p50 ms", "p99 ms", "max ms")
	for _, k := range kinds {
		kr, ok := r.Kinds[k]
		if !ok {
			continue
		}
		p("%-10s %9d %9d %9d %9d %9.1f %9.1f %9.1f\n", k, kr.Requests, kr.OK, sum(kr.Refused), sum(kr.Failed), kr.P50MS, kr.P99MS, kr.MaxMS)
		for _, code := range slices.Sorted(maps.Keys(kr.Refused)) {
			p("%-10s   refused %s: %d\n", "", code, kr.Refused[code])
		}
		for _, code := range slices.Sorted(maps.Keys(kr.Failed)) {
			p("%-10s   failed %s: %d\n", "", code, kr.Failed[code])
		}
	}
	l := r.Loads
	p("loads: %d taps, %d with no credit, %d applied (%d fen), %d consumed at the host, %d voided by probe, %d unsettled, %d doubled, %d card errors\n",
		l.Taps, l.NoCredit, l.Applied, l.AppliedFen, l.Consumed, l.NotApplied, l.Unsettled, l.Doubled, l.CardErrors)
	if b := r.Backlog; b != nil {
		p("backlog: %d of %d rows acked in %d batches, %.1f s, drained %v\n", b.Acked, b.Rows, b.Batches, b.Seconds, b.Drained)
	}
	if rp := r.Replay; rp != nil {
		p("replay: %d sent to another instance, %d refused (nonce), %d accepted, %d other\n", rp.Sent, rp.Refused, rp.Accepted, sum(rp.Other))
	}
	return err
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// recorder collects outcomes and latencies as the terminals run.
type recorder struct {
	mu    gosync.Mutex
	kinds map[string]*kindRec
	loads LoadReport
	// applied counts, per credit id, the cards' TACs: more than one is a
	// credit loaded twice.
	applied map[string]int
}

type kindRec struct {
	KindReport
	lat []time.Duration
}

func newRecorder() *recorder {
	return &recorder{kinds: map[string]*kindRec{}, applied: map[string]int{}}
}

// request records one request of kind that took d and ended in err.
func (r *recorder) request(kind string, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.kinds[kind]
	if k == nil {
		k = &kindRec{KindReport: KindReport{Refused: map[string]int64{}, Failed: map[string]int64{}}}
		r.kinds[kind] = k
	}
	k.Requests++
	var he *hostsync.HostError
	switch {
	case err == nil:
		k.OK++
	case errors.As(err, &he) && he.Status >= 500:
		k.Failed[fmt.Sprintf("%d %s", he.Status, he.Code)]++
		return
	case errors.As(err, &he):
		k.Refused[he.Code]++
	case errors.Is(err, hostsync.ErrUnreachable):
		k.Failed[CodeUnreachable]++
		return
	default:
		k.Failed["error"]++
		return
	}
	k.lat = append(k.lat, d)
}

// failedOver counts a request of kind that another instance answered
// after the first it tried failed it.
func (r *recorder) failedOver(kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if k := r.kinds[kind]; k != nil {
		k.FailedOver++
	}
}

// failed counts, beside an answered request of kind, an answer the
// terminal could not use.
func (r *recorder) failed(kind, cause string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if k := r.kinds[kind]; k != nil {
		k.Failed[cause]++
	}
}

// load changes the load counters under the lock.
func (r *recorder) load(f func(l *LoadReport)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.loads)
}

// applied records a card's TAC for credit id.
func (r *recorder) appliedCredit(id string, amount int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applied[id]++
	r.loads.Applied++
	r.loads.AppliedFen += amount
	if r.applied[id] == 2 {
		r.loads.Doubled++
	}
}

// report builds the Report of a run that drove requests for elapsed.
func (r *recorder) report(elapsed time.Duration) *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := &Report{Seconds: elapsed.Seconds(), Kinds: map[string]KindReport{}, Loads: r.loads}
	for name, k := range r.kinds {
		kr := k.KindReport
		kr.Refused, kr.Failed = maps.Clone(k.Refused), maps.Clone(k.Failed)
		if len(kr.Refused) == 0 {
			kr.Refused = nil
		}
		if len(kr.Failed) == 0 {
			kr.Failed = nil
		}
		sort.Slice(k.lat, func(i, j int) bool { return k.lat[i] < k.lat[j] })
		kr.P50MS, kr.P99MS = ms(quantile(k.lat, 0.50)), ms(quantile(k.lat, 0.99))
		if n := len(k.lat); n > 0 {
			kr.MaxMS = ms(k.lat[n-1])
		}
		out.Kinds[name] = kr
		out.Requests += int64(len(k.lat))
	}
	if elapsed > 0 {
		out.RequestsPerSecond = float64(out.Requests) / elapsed.Seconds()
	}
	return out
}

// quantile is the nearest-rank q-quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
