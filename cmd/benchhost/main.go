// Command benchhost measures the reference host at campus scale
// (scripts/bench, issue 15): HOST_TERMINALS terminal identities (10,000)
// driven by the fleet simulator (sync/sim) against HOST_INSTANCES `cardhost
// serve` on one PostgreSQL database, then the same load against one `cardhost
// serve` on an SQLite host directory, in the same run. One after the other,
// not side by side: on a machine of few cores the two would take each
// other's CPU and neither figure would mean anything.
//
// In each, beside the fleet, one more terminal back after a week offline
// uploads HOST_BACKLOG_ROWS journal rows (a busy canteen POS: 5,000) in the
// daemon's batches of 500; the target is under 60 s while the others keep
// their rate, so the answered requests per second are given while it drains
// and after.
//
// It prints per backend: instances, terminals, target and held actions per
// second, answered requests per second, p50/p99 of load authorize and of a
// journal upload, each instance's peak RSS (VmHWM), the PostgreSQL
// connections of the database (the most seen, sampled every 200 ms) beside
// the pools' bound, the backlog's drain time and whether it drained; then
// the fleet's own report (sim.Report.WriteText: refusals and failures by
// code, such as 503 busy).
//
//	HOST_DB=postgres://... go run ./cmd/benchhost
//
// Environment: HOST_DB (a postgres:// URL of an empty database; unset, only
// SQLite is measured), HOST_TERMINALS (10000), HOST_RATE (actions per second
// of each terminal, 0.02), HOST_DURATION (60s), HOST_BACKLOG_ROWS (5000),
// HOST_INSTANCES (3), HOST_POOL (each instance's pool_max_conns, 10),
// HOST_CARDS (1000), HOST_CREDITS (credits per card, 4), HOST_WORKERS
// (provisioning goroutines on PostgreSQL, 8), HOST_TIMEOUT (bound of the
// whole run, 20m), KEEP=1 (keep the temporary directory and the logs).
// Loopback only; everything is bounded and stops by itself.
package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	gosync "sync"
	"syscall"
	"text/tabwriter"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to count the connections

	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/internal/benchproc"
	hostsync "github.com/cardd/cardd/sync"
	"github.com/cardd/cardd/sync/sim"
)

func main() {
	set, err := parseSettings(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchhost:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, set.timeout)
	defer cancel()
	ok, err := run(ctx, set, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchhost:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

// backend is one host under test.
type backend struct {
	name      string // "postgresql" or "sqlite"
	db        string // the store's URL, "" for SQLite in the directory
	instances int
	workers   int // provisioning goroutines
}

// result is one backend's figures.
type result struct {
	backend
	provision   time.Duration
	rep         *sim.Report
	rate        windows
	rss         []int64 // peak RSS of each instance, bytes
	pgConns     int     // the most connections seen, -1 when not PostgreSQL
	pgConnBound int
}

func run(ctx context.Context, set settings, out io.Writer) (ok bool, err error) {
	tmp, err := os.MkdirTemp("", "cardd-benchhost-")
	if err != nil {
		return false, err
	}
	if os.Getenv("KEEP") == "1" {
		fmt.Fprintln(os.Stderr, "benchhost: keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	root, err := benchproc.ModuleRoot()
	if err != nil {
		return false, err
	}
	cardhost := filepath.Join(tmp, "cardhost")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", cardhost, "./cmd/cardhost")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return false, fmt.Errorf("go build ./cmd/cardhost: %v\n%s", err, b)
	}
	var backends []backend
	if set.db != "" {
		backends = append(backends, backend{name: "postgresql", db: set.db, instances: set.instances, workers: set.workers})
	} else {
		fmt.Fprintln(out, "HOST_DB unset: the SQLite host only")
	}
	backends = append(backends, backend{name: "sqlite", instances: 1, workers: 1})
	fmt.Fprintf(out, "%d terminals at %g actions/s each (%g/s), %s, backlog %d rows; the backends one after the other, not side by side\n\n",
		set.terminals, set.rate, float64(set.terminals)*set.rate, set.duration, set.backlogRows)
	var results []result
	ok = true
	for _, b := range backends {
		r, err := runBackend(ctx, set, b, cardhost, filepath.Join(tmp, b.name))
		if err != nil {
			return false, fmt.Errorf("%s: %w", b.name, err)
		}
		fmt.Fprintf(out, "--- %s: %d instance(s), provisioned in %.1f s; the fleet's report:\n", b.name, b.instances, r.provision.Seconds())
		if err := r.rep.WriteText(out); err != nil {
			return false, err
		}
		fmt.Fprintln(out)
		results = append(results, r)
		bl := r.rep.Backlog
		if r.rep.Loads.Doubled > 0 || r.rep.Loads.Unsettled > 0 || bl == nil || !bl.Drained {
			ok = false
		}
	}
	return ok, writeTable(out, set, results)
}

// runBackend provisions a host directory on b's store, starts its
// instances, drives the fleet against them, and stops them.
func runBackend(ctx context.Context, set settings, b backend, cardhost, dir string) (result, error) {
	r := result{backend: b, pgConns: -1}
	if err := host.InitDir(dir, b.db); err != nil {
		return r, err
	}
	t0 := time.Now()
	cfg, err := provision(ctx, set, b, dir)
	if err != nil {
		return r, fmt.Errorf("provisioning: %w", err)
	}
	r.provision = time.Since(t0)

	env := []string{"CARDHOST_DB="}
	if b.db != "" {
		u, err := withPool(b.db, set.pool)
		if err != nil {
			return r, err
		}
		env = []string{"CARDHOST_DB=" + u}
		r.pgConnBound = b.instances * set.pool
	}
	var procs []*benchproc.Proc
	defer func() {
		for _, p := range procs {
			_ = p.Stop()
		}
	}()
	for i := range b.instances {
		addr, err := benchproc.FreeAddr()
		if err != nil {
			return r, err
		}
		p, err := benchproc.Start(filepath.Join(dir, fmt.Sprintf("serve-%d.log", i)), env, cardhost, "serve", "--dir", dir, "--listen", addr)
		if err != nil {
			return r, err
		}
		procs = append(procs, p)
		if err := benchproc.WaitListening(addr, p); err != nil {
			return r, err
		}
		cfg.Hosts = append(cfg.Hosts, "http://"+addr)
	}

	var conns *connSampler
	if b.db != "" {
		if conns, err = sampleConns(ctx, b.db, 200*time.Millisecond); err != nil {
			return r, err
		}
	}
	tr := hostsync.NewTransport(nil)
	tr.MaxIdleConnsPerHost = 256 // thousands of terminals share few instances
	ct := &countingTransport{next: tr}
	cfg.Transport = ct
	start := time.Now()
	rep, err := sim.Run(ctx, cfg)
	if conns != nil {
		r.pgConns = conns.stop()
	}
	if err != nil {
		return r, err
	}
	r.rep = rep
	backlog := 0.0
	if rep.Backlog != nil {
		backlog = rep.Backlog.Seconds
	}
	r.rate = ct.windows(start, time.Duration(backlog*float64(time.Second)), set.duration)
	for _, p := range procs {
		rss, err := benchproc.PeakRSS(p.Cmd.Process.Pid)
		if err != nil {
			return r, err
		}
		r.rss = append(r.rss, rss)
	}
	for _, p := range procs {
		if err := p.Stop(); err != nil {
			return r, fmt.Errorf("stopping cardhost serve: %v\n%s", err, p.Tail())
		}
	}
	return r, nil
}

// provision makes the fleet in dir: the terminals, the backlog's terminal,
// the cards and their credits.
func provision(ctx context.Context, set settings, b backend, dir string) (sim.Config, error) {
	st, err := host.OpenDir(dir, b.db)
	if err != nil {
		return sim.Config{}, err
	}
	defer st.Close()
	keys, err := host.LoadDirKeys(dir)
	if err != nil {
		return sim.Config{}, err
	}
	cardDir := filepath.Join(dir, "cards")
	if err := os.MkdirAll(cardDir, 0o700); err != nil {
		return sim.Config{}, err
	}
	p, err := sim.Provision(ctx, st, keys, cardDir, set.terminals+1, set.cards, set.credits, balanceFen, amountFen, b.workers)
	if err != nil {
		return sim.Config{}, err
	}
	return sim.Config{
		Terminals: p.Terminals[1:],
		Cards:     p.Cards,
		Rate:      set.rate,
		Duration:  set.duration,
		Timeout:   10 * time.Second,
		Drain:     10 * time.Second,
		Backlog:   sim.Backlog{Terminal: p.Terminals[0], Rows: set.backlogRows, BatchSize: 500},
	}, nil
}

// withPool sets pool_max_conns in a postgres:// URL.
func withPool(raw string, n int) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("HOST_DB: not a URL")
	}
	q := u.Query()
	q.Set("pool_max_conns", fmt.Sprint(n))
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// countingTransport notes when each answer (any status) came back, for
// the rate in a window of the run.
type countingTransport struct {
	next http.RoundTripper
	mu   gosync.Mutex
	at   []time.Time
}

// RoundTrip counts the request once it is answered.
func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err == nil {
		now := time.Now()
		c.mu.Lock()
		c.at = append(c.at, now)
		c.mu.Unlock()
	}
	return resp, err
}

// windows is the answered requests per second while the backlog drained
// and after it, until the fleet stopped acting.
type windows struct {
	during, after float64
}

func (c *countingTransport) windows(start time.Time, backlog, acting time.Duration) windows {
	c.mu.Lock()
	defer c.mu.Unlock()
	return countWindows(c.at, start, backlog, acting)
}

// countWindows divides the answers in [start, start+backlog) and in
// [start+backlog, start+acting) by the windows' lengths; an empty window
// gives 0.
func countWindows(at []time.Time, start time.Time, backlog, acting time.Duration) windows {
	backlog = min(backlog, acting)
	var during, after int
	for _, t := range at {
		switch d := t.Sub(start); {
		case d < 0 || d >= acting:
		case d < backlog:
			during++
		default:
			after++
		}
	}
	var w windows
	if backlog > 0 {
		w.during = float64(during) / backlog.Seconds()
	}
	if rest := acting - backlog; rest > 0 {
		w.after = float64(after) / rest.Seconds()
	}
	return w
}

// connSampler counts the database's connections every interval and keeps
// the most seen.
type connSampler struct {
	done chan struct{}
	wg   gosync.WaitGroup
	most int
}

func sampleConns(ctx context.Context, dsn string, every time.Duration) (*connSampler, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	count := func() (int, error) {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var n int
		// Client backends only (an autovacuum worker in the database is
		// the server's), and not this one: it is the bench's, not the hosts'.
		err := db.QueryRowContext(c, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()`).Scan(&n)
		return n, err
	}
	if _, err := count(); err != nil {
		db.Close()
		return nil, fmt.Errorf("counting PostgreSQL connections: %w", err)
	}
	s := &connSampler{done: make(chan struct{})}
	s.wg.Go(func() {
		defer db.Close()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if n, err := count(); err == nil {
				s.most = max(s.most, n)
			}
			select {
			case <-s.done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	return s, nil
}

// stop ends the sampling and returns the most connections seen.
func (s *connSampler) stop() int {
	close(s.done)
	s.wg.Wait()
	return s.most
}

func writeTable(out io.Writer, set settings, results []result) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "backend\tinstances\tterminals\ttarget act/s\theld act/s\treq/s\treq/s backlog\treq/s after\tauthorize p50/p99 ms\tjournal p50/p99 ms\tRSS MB each\tPG conns (bound)\tbacklog rows\tdrain s (<60)\tdrained\t")
	for _, r := range results {
		rep := r.rep
		a, j := rep.Kinds[sim.KindAuthorize], rep.Kinds[sim.KindJournal]
		var rss []string
		for _, b := range r.rss {
			rss = append(rss, fmt.Sprintf("%.0f", float64(b)/(1<<20)))
		}
		conns := "-"
		if r.pgConns >= 0 {
			conns = fmt.Sprintf("%d (%d)", r.pgConns, r.pgConnBound)
		}
		drain, drained, rows := "-", "-", "0"
		if b := rep.Backlog; b != nil {
			drain, drained, rows = fmt.Sprintf("%.1f", b.Seconds), fmt.Sprint(b.Drained), fmt.Sprint(b.Rows)
			if b.Seconds >= 60 {
				drain += " MISSED"
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f/%.1f\t%.1f/%.1f\t%s\t%s\t%s\t%s\t%s\t\n",
			r.name, r.instances, rep.Terminals, float64(set.terminals)*set.rate, actions(rep)/set.duration.Seconds(),
			rep.RequestsPerSecond, r.rate.during, r.rate.after, a.P50MS, a.P99MS, j.P50MS, j.P99MS,
			strings.Join(rss, "/"), conns, rows, drain, drained)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeFailures(out, results)
}

// actions is what the terminals did: heartbeats, pulls, journal uploads
// and taps (a tap is one action of several requests). A request sent again
// to the next instance counts again.
func actions(rep *sim.Report) float64 {
	n := rep.Loads.Taps
	for _, k := range []string{sim.KindHeartbeat, sim.KindPull, sim.KindJournal} {
		n += rep.Kinds[k].Requests
	}
	return float64(n)
}

// writeFailures lists, per backend, the requests that got no usable answer
// and the refusals, by code: where the host was the bottleneck (503 busy,
// timeouts) rather than the load.
func writeFailures(out io.Writer, results []result) error {
	for _, r := range results {
		failed, refused := map[string]int64{}, map[string]int64{}
		for kind, k := range r.rep.Kinds {
			for code, n := range k.Failed {
				failed[kind+" "+code] += n
			}
			for code, n := range k.Refused {
				refused[kind+" "+code] += n
			}
		}
		if _, err := fmt.Fprintf(out, "%s: failed %s; refused %s\n", r.name, counts(failed), counts(refused)); err != nil {
			return err
		}
	}
	return nil
}

func counts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", k, m[k])
	}
	return b.String()
}

// The cards' issue balance and each credit's amount, fen: cardfleet's
// defaults, so that a card takes its credits under the EP's balance cap.
const (
	balanceFen = 1000
	amountFen  = 150
)
