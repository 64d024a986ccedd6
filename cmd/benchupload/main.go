// Command benchupload measures how fast the real daemon empties a large
// journal into the reference host, and how much memory it takes doing it
// (scripts/bench; targets: 100,000 rows in under 60 s, under 100 MB RSS).
//
// It builds cardhost and cardd into a temporary directory, creates a host
// directory with one terminal, starts `cardhost serve` on a free loopback
// port, fills a terminal store with ROWS journal rows (kind read, state
// done) through offline.Store.Begin, the way taps write them, then starts
// `cardd run` on that store and times until the host holds every row,
// reading the daemon's peak RSS (VmHWM) before stopping it.
//
//	go run ./cmd/benchupload            # ROWS=100000
//	ROWS=20000 go run ./cmd/benchupload
//
// Environment: ROWS (default 100000), FILLERS (goroutines calling Begin,
// default 16), TIMEOUT (upload limit, default 10m), PCSCD=none (the daemon
// is pointed at a pcscd socket that does not exist, to check that it starts
// and uploads without pcscd), KEEP=1 (keep the temporary directory).
//
// The daemon uses no reader (CARDD_READER_CARD_PATTERN=^$). The host's
// database is opened read-mostly by this process beside cardhost (SQLite WAL
// allows readers beside the writer) to count the rows.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/internal/benchproc"
	"github.com/cardd/cardd/offline"
)

const terminalID = "000000000001"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchupload:", err)
		os.Exit(1)
	}
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive number", name, v)
	}
	return n, nil
}

// settings are the run's environment variables, checked.
type settings struct {
	rows, fillers int
	timeout       time.Duration
}

func settingsFromEnv() (settings, error) {
	var s settings
	var err error
	if s.rows, err = envInt("ROWS", 100000); err != nil {
		return s, err
	}
	if s.fillers, err = envInt("FILLERS", 16); err != nil {
		return s, err
	}
	s.timeout = 10 * time.Minute
	if v := os.Getenv("TIMEOUT"); v != "" {
		if s.timeout, err = time.ParseDuration(v); err != nil {
			return s, fmt.Errorf("TIMEOUT=%q: %v", v, err)
		}
	}
	return s, nil
}

func run() error {
	set, err := settingsFromEnv()
	if err != nil {
		return err
	}
	rows := set.rows
	tmp, err := os.MkdirTemp("", "cardd-benchupload-")
	if err != nil {
		return err
	}
	if os.Getenv("KEEP") == "1" {
		fmt.Fprintln(os.Stderr, "benchupload: keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	// Build both commands the way an operator would install them.
	root, err := benchproc.ModuleRoot()
	if err != nil {
		return err
	}
	cardhost, cardd := filepath.Join(tmp, "cardhost"), filepath.Join(tmp, "cardd")
	for bin, pkg := range map[string]string{cardhost: "./cmd/cardhost", cardd: "./cmd/cardd"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}

	// The host: a directory, one terminal and its secret file.
	hostDir, secretFile := filepath.Join(tmp, "host"), filepath.Join(tmp, "terminal.secret")
	if out, err := exec.Command(cardhost, "init", "--dir", hostDir).CombinedOutput(); err != nil {
		return fmt.Errorf("cardhost init: %v\n%s", err, out)
	}
	if out, err := exec.Command(cardhost, "terminal", "add", "--dir", hostDir, "--id", terminalID, "--secret-out", secretFile).CombinedOutput(); err != nil {
		return fmt.Errorf("cardhost terminal add: %v\n%s", err, out)
	}
	addr, err := benchproc.FreeAddr()
	if err != nil {
		return err
	}
	hostProc, err := benchproc.Start(filepath.Join(tmp, "cardhost.log"), nil, cardhost, "serve", "--dir", hostDir, "--listen", addr)
	if err != nil {
		return err
	}
	defer hostProc.Stop()
	if err := benchproc.WaitListening(addr, hostProc); err != nil {
		return err
	}

	// The terminal's journal, as taps write it: one durable commit per row.
	storePath := filepath.Join(tmp, "cardd.db")
	fillTime, err := fill(storePath, rows, set.fillers)
	if err != nil {
		return err
	}
	fmt.Printf("fill %d rows through offline.Store.Begin (%d goroutines): %.1f s, %.0f commits/s\n",
		rows, set.fillers, fillTime.Seconds(), float64(rows)/fillTime.Seconds())

	hs, err := host.OpenDir(hostDir, "")
	if err != nil {
		return fmt.Errorf("opening the host database beside cardhost: %w", err)
	}
	defer hs.Close()

	env := []string{
		"CARDD_CONFIG=",
		"CARDD_HOST_URL=http://" + addr,
		"CARDD_HOST_SECRET_FILE=" + secretFile,
		"CARDD_STORE_PATH=" + storePath,
		"CARDD_TERMINAL_ID=" + terminalID,
		"CARDD_READER_CARD_PATTERN=^$",
		"CARDD_LOG_LEVEL=info",
	}
	if os.Getenv("PCSCD") == "none" {
		// libpcsclite's client looks for pcscd's socket here.
		env = append(env, "PCSCLITE_CSOCK_NAME="+filepath.Join(tmp, "no-pcscd.sock"))
	}
	begin := time.Now()
	daemon, err := benchproc.Start(filepath.Join(tmp, "cardd.log"), env, cardd, "run")
	if err != nil {
		return err
	}
	defer daemon.Stop()

	firstRow, err := waitUploaded(hs, daemon, begin, set)
	if err != nil {
		return err
	}
	elapsed := time.Since(begin)
	peak, err := benchproc.PeakRSS(daemon.Cmd.Process.Pid)
	if err != nil {
		return err
	}
	hostPeak, _ := benchproc.PeakRSS(hostProc.Cmd.Process.Pid)
	if err := daemon.Stop(); err != nil {
		return fmt.Errorf("stopping cardd: %v\n%s", err, daemon.Tail())
	}
	if err := daemonQueue(storePath); err != nil {
		return err
	}
	fmt.Printf("upload %d rows: %.1f s, cardd peak RSS %.1f MB (targets < 60 s, < 100 MB)\n", rows, elapsed.Seconds(), float64(peak)/(1<<20))
	fmt.Printf("  first row at the host after %.2f s (daemon start); %.0f rows/s; cardhost peak RSS %.1f MB\n",
		firstRow.Seconds(), float64(rows)/elapsed.Seconds(), float64(hostPeak)/(1<<20))
	return nil
}

// waitUploaded polls the host's journal until it holds every row, the
// daemon exits or the timeout passes; it returns when the first row arrived,
// counted from begin.
func waitUploaded(hs *host.Store, daemon *benchproc.Proc, begin time.Time, set settings) (firstRow time.Duration, err error) {
	ctx := context.Background()
	lastReport := begin
	for {
		n, err := hs.JournalCount(ctx, terminalID)
		if err != nil {
			return 0, fmt.Errorf("counting the host's journal rows: %w", err)
		}
		if n > 0 && firstRow == 0 {
			firstRow = time.Since(begin)
		}
		if n >= set.rows {
			return firstRow, nil
		}
		if err := daemon.Exited(); err != nil {
			return 0, fmt.Errorf("cardd exited after %.1f s with %d of %d rows at the host: %v\n%s", time.Since(begin).Seconds(), n, set.rows, err, daemon.Tail())
		}
		if time.Since(begin) > set.timeout {
			return 0, fmt.Errorf("after %v the host holds %d of %d rows; cardd log:\n%s", set.timeout, n, set.rows, daemon.Tail())
		}
		if time.Since(lastReport) >= 10*time.Second {
			fmt.Fprintf(os.Stderr, "benchupload: %.0f s: %d of %d rows at the host\n", time.Since(begin).Seconds(), n, set.rows)
			lastReport = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// daemonQueue checks that the stopped daemon's store has nothing owed left
// (the host's count and the terminal's acks agree).
func daemonQueue(path string) error {
	st, err := offline.Open(path, terminalID)
	if err != nil {
		return err
	}
	defer st.Close()
	depth, err := st.QueueDepth(context.Background())
	if err != nil {
		return err
	}
	if depth != 0 {
		fmt.Printf("  note: %d rows still unacked in the terminal's store when cardd stopped\n", depth)
	}
	return nil
}

// fill writes rows journal rows through Begin from several goroutines.
func fill(path string, rows, workers int) (time.Duration, error) {
	st, err := offline.Open(path, terminalID)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	t0 := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(rows) {
					return
				}
				_, err := st.Begin(ctx, offline.Row{
					Kind: offline.KindRead, State: offline.StateDone,
					Card: fmt.Sprintf("3101%012d", i%5000), Purse: "EP", BalanceFen: 1000 + i%50000,
					Time: time.Now().Format(hostapi.TimeLayout),
				})
				if err != nil {
					errs <- err
					next.Store(int64(rows))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("filling the journal: %w", err)
	}
	d := time.Since(t0)
	if depth, err := st.QueueDepth(ctx); err != nil || depth != rows {
		return 0, fmt.Errorf("filled journal owes %d rows (%v), want %d", depth, err, rows)
	}
	return d, nil
}
