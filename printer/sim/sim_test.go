//go:build linux

package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.bug.st/serial"
	"golang.org/x/sys/unix"

	"github.com/cardd/cardd/internal/pty"
)

// requirePTY skips the test when no pseudo-terminal can be made, or fails it
// under CI=true: a pty is a real part of the test.
func requirePTY(t testing.TB) {
	t.Helper()
	m, s, _, err := pty.Open()
	if err == nil {
		m.Close()
		s.Close()
		return
	}
	msg := fmt.Sprintf("a pseudo-terminal is needed (/dev/ptmx and /dev/pts): %v", err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// openPrinter opens a printer that is closed when the test ends.
func openPrinter(t testing.TB, opt Options) *Printer {
	t.Helper()
	requirePTY(t)
	p, err := Open(opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// hostFile opens the printer's port as plain file, the way a host without a
// serial library would.
func hostFile(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// hostSerial opens the printer's port with go.bug.st/serial at 9600 8N1,
// as cardd does.
func hostSerial(t testing.TB, path string) serial.Port {
	t.Helper()
	port, err := serial.Open(path, &serial.Mode{BaudRate: 9600, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		t.Fatalf("serial.Open(%s): %v", path, err)
	}
	t.Cleanup(func() { port.Close() })
	return port
}

var errTimeout = errors.New("read timed out")

// readN reads exactly n bytes from the host side within d.
func readN(t testing.TB, r io.Reader, n int, d time.Duration) ([]byte, error) {
	t.Helper()
	buf := make([]byte, 0, n)
	deadline := time.Now().Add(d)
	switch r := r.(type) {
	case *os.File:
		r.SetReadDeadline(deadline)
		defer r.SetReadDeadline(time.Time{})
	case serial.Port:
		r.SetReadTimeout(d)
	}
	tmp := make([]byte, n)
	for len(buf) < n {
		if time.Now().After(deadline) {
			return buf, errTimeout
		}
		k, err := r.Read(tmp[:n-len(buf)])
		buf = append(buf, tmp[:k]...)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return buf, errTimeout
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

func mustWrite(t testing.TB, w io.Writer, b []byte) {
	t.Helper()
	if _, err := w.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// query sends DLE EOT n and returns the answer.
func query(t testing.TB, rw io.ReadWriter, n byte) byte {
	t.Helper()
	mustWrite(t, rw, []byte{0x10, 0x04, n})
	b, err := readN(t, rw, 1, 5*time.Second)
	if err != nil {
		t.Fatalf("DLE EOT %d: %v", n, err)
	}
	return b[0]
}

func allBytes() []byte {
	b := make([]byte, 0, 512)
	for range 2 {
		for i := range 256 {
			b = append(b, byte(i))
		}
	}
	return append(b, "\r\n\n\r\x11\x13\x03\x1a\x7f"...)
}

// The pty passes bytes exactly both ways, whether the host opens it as a
// file or through go.bug.st/serial (which sets its own termios).
func TestPTYByteExact(t *testing.T) {
	requirePTY(t)
	master, slave, path, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	want := allBytes()
	check := func(name string, host io.ReadWriter) {
		mustWrite(t, host, want)
		if got, err := readN(t, master, len(want), 5*time.Second); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: host to printer: err %v, got % X", name, err, got)
		}
		mustWrite(t, master, want)
		if got, err := readN(t, host, len(want), 5*time.Second); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: printer to host: err %v, got % X", name, err, got)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	check("os.OpenFile", f)
	f.Close()
	port := hostSerial(t, path)
	check("go.bug.st/serial", port)
	port.Close()
	// Reopened after the serial library's exclusive open was closed.
	check("go.bug.st/serial again", hostSerial(t, path))
}

func TestPrinterEndToEnd(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "cardd-printer")
	p := openPrinter(t, Options{Dir: filepath.Join(dir, "receipts"), Link: link})
	if target, err := os.Readlink(link); err != nil || target != p.Path() {
		t.Fatalf("link %s -> %q (%v), want %s", link, target, err, p.Path())
	}
	host := hostFile(t, link)
	mustWrite(t, host, sampleReceipt(t))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs, err := p.WaitReceipts(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Seq != 1 || !slices.Equal(rs[0].Lines, sampleLines) || len(rs[0].QR) != 1 {
		t.Errorf("receipt %+v", rs[0])
	}
	got, err := os.ReadFile(filepath.Join(dir, "receipts", "receipt-0001.txt"))
	want := "校园一卡通\n消费金额: 12.50元\n卡内余额: 87.50元\n卡号: ****0001  终端 POS-07\n\n谢谢惠顾\n\n\n\n"
	if err != nil || string(got) != want {
		t.Errorf("receipt file: %v\n got %q\nwant %q", err, got, want)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "receipts")); len(ents) != 1 {
		t.Errorf("receipts directory holds %d files, want 1 (no temporary files left)", len(ents))
	}
}

func TestPrinterSerialPort(t *testing.T) {
	var mu sync.Mutex
	var notified []Receipt
	p := openPrinter(t, Options{OnReceipt: func(r Receipt) {
		mu.Lock()
		notified = append(notified, r)
		mu.Unlock()
	}})
	port := hostSerial(t, p.Path())
	in := cat(escInit, chineseOn, gb(t, "食堂消费 ¥8.00"), nl, gb(t, "余额不足请充值"), nl, feedLines(2), cutFull)
	mustWrite(t, port, in)
	// The answer comes after everything sent before the query was processed.
	if s := query(t, port, 1); s != 0x12 {
		t.Errorf("DLE EOT 1 = %02X, want 12", s)
	}
	rs := p.Receipts()
	want := []string{"食堂消费 ¥8.00", "余额不足请充值", "", ""}
	if len(rs) != 1 || !slices.Equal(rs[0].Lines, want) || rs[0].Bytes != len(in) {
		t.Fatalf("receipts %+v, want one with %q", rs, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notified) != 1 || notified[0].Seq != 1 {
		t.Errorf("OnReceipt got %+v", notified)
	}
	if st := p.Stats(); st.Printed != 1 || st.StatusQueries != 1 || st.BytesIn != int64(len(in)+3) {
		t.Errorf("stats %+v", st)
	}
}

func TestStatusInEachState(t *testing.T) {
	p := openPrinter(t, Options{})
	host := hostFile(t, p.Path())
	for _, tc := range []struct {
		name  string
		state State
		want  [4]byte
	}{
		{"ready", State{}, [4]byte{0x12, 0x12, 0x12, 0x12}},
		{"paper near end", State{PaperNearEnd: true}, [4]byte{0x12, 0x12, 0x12, 0x1E}},
		// Paper end stop (DLE EOT 2 bit 5) only once something to print
		// came while out: TestPaperEndStop.
		{"paper out", State{PaperOut: true}, [4]byte{0x1A, 0x12, 0x12, 0x7E}},
		{"cover open", State{CoverOpen: true}, [4]byte{0x1A, 0x16, 0x12, 0x12}},
		{"offline", State{Offline: true}, [4]byte{0x1A, 0x52, 0x52, 0x12}},
		{"paper out, cover open", State{PaperOut: true, CoverOpen: true}, [4]byte{0x1A, 0x16, 0x12, 0x7E}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.SetState(tc.state)
			if p.State() != tc.state {
				t.Fatalf("State() = %+v", p.State())
			}
			// All four at once, as Epson allows.
			mustWrite(t, host, []byte{0x10, 0x04, 1, 0x10, 0x04, 2, 0x10, 0x04, 3, 0x10, 0x04, 4})
			got, err := readN(t, host, 4, 5*time.Second)
			if err != nil || !bytes.Equal(got, tc.want[:]) {
				t.Errorf("answers % X (%v), want % X", got, err, tc.want)
			}
			for n := byte(1); n <= 4; n++ {
				if s, _ := tc.state.Status(n); s != tc.want[n-1] {
					t.Errorf("Status(%d) = %02X, want %02X", n, s, tc.want[n-1])
				}
				if s, _ := tc.state.Status(n); s&0x93 != 0x12 {
					t.Errorf("Status(%d) = %02X breaks the fixed bits", n, s)
				}
			}
		})
	}
	if _, ok := (State{}).Status(5); ok {
		t.Error("Status(5) answered")
	}
	// DLE EOT with another n is ignored: the next answer is the next query's.
	p.SetState(State{})
	mustWrite(t, host, []byte{0x10, 0x04, 0x05, 0x10, 0x04, 0x10, 0x04, 0x02})
	if got, err := readN(t, host, 2, time.Second); err != errTimeout || !bytes.Equal(got, []byte{0x12}) {
		t.Errorf("got % X (%v), want one answer 12", got, err)
	}
}

func TestSetters(t *testing.T) {
	p := openPrinter(t, Options{Initial: State{Offline: true}})
	p.SetPaperOut(true)
	p.SetCoverOpen(true)
	p.SetPaperNearEnd(true)
	p.SetOffline(false)
	if want := (State{PaperOut: true, CoverOpen: true, PaperNearEnd: true}); p.State() != want {
		t.Errorf("State() = %+v, want %+v", p.State(), want)
	}
	if s := p.State().String(); s != "paper out, paper near end, cover open" {
		t.Errorf("String() = %q", s)
	}
}

func TestAlwaysOfflineStillPrints(t *testing.T) {
	p := openPrinter(t, Options{AlwaysOffline: true})
	host := hostFile(t, p.Path())
	mustWrite(t, host, cat([]byte("printed anyway"), nl, cutFull))
	for n, want := range []byte{0x1A, 0x52, 0x52, 0x12} {
		if s := query(t, host, byte(n+1)); s != want {
			t.Errorf("DLE EOT %d = %02X, want %02X", n+1, s, want)
		}
	}
	if rs := p.Receipts(); len(rs) != 1 || rs[0].Lines[0] != "printed anyway" {
		t.Errorf("receipts %+v", rs)
	}
}

func TestPaperOutDiscards(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var lost []Receipt
	p := openPrinter(t, Options{Dir: dir, OnLost: func(r Receipt) {
		mu.Lock()
		lost = append(lost, r)
		mu.Unlock()
	}})
	host := hostFile(t, p.Path())
	receipt := func(text string) []byte { return cat(escInit, gb(t, text), nl, feedLines(1), cutPartial) }

	// Sent while out of paper: lost, but status is answered.
	p.SetPaperOut(true)
	mustWrite(t, host, receipt("缺纸时发送"))
	if s := query(t, host, 1); s != 0x1A {
		t.Errorf("paper out: DLE EOT 1 = %02X, want 1A", s)
	}
	if s := query(t, host, 4); s != 0x7E {
		t.Errorf("paper out: DLE EOT 4 = %02X, want 7E", s)
	}
	if rs, st := p.Receipts(), p.Stats(); len(rs) != 0 || st.Lost != 1 || st.Printed != 0 {
		t.Fatalf("paper out: receipts %+v, stats %+v", rs, st)
	}

	// Paper back: the next receipt prints whole, numbered 1.
	p.SetPaperOut(false)
	mustWrite(t, host, receipt("纸已装好"))
	if s := query(t, host, 1); s != 0x12 {
		t.Errorf("ready: DLE EOT 1 = %02X, want 12", s)
	}
	rs := p.Receipts()
	if len(rs) != 1 || rs[0].Seq != 1 || rs[0].Lines[0] != "纸已装好" {
		t.Fatalf("after refill: %+v", rs)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "receipt-0001.txt")); err != nil || string(b) != "纸已装好\n\n" {
		t.Errorf("receipt-0001.txt: %q %v", b, err)
	}

	// Commands that print nothing may come while out of paper.
	p.SetPaperOut(true)
	mustWrite(t, host, cat(escInit, chineseOn, boldOn))
	query(t, host, 1)
	p.SetPaperOut(false)
	mustWrite(t, host, cat(gb(t, "设置不算"), nl, cutFull))
	query(t, host, 1)
	if rs := p.Receipts(); len(rs) != 2 || rs[1].Lines[0] != "设置不算" {
		t.Fatalf("after settings sent while out of paper: %+v", rs)
	}

	// Started while out of paper, finished after the refill: lost whole.
	r := receipt("跨越缺纸")
	p.SetPaperOut(true)
	mustWrite(t, host, r[:4]) // ESC @ and one character
	query(t, host, 1)
	p.SetPaperOut(false)
	mustWrite(t, host, r[4:])
	query(t, host, 1)

	// Started ready, cover opened before its end: lost whole.
	r = receipt("中途开盖")
	mustWrite(t, host, r[:4]) // ESC @ and one character
	query(t, host, 1)
	p.SetCoverOpen(true)
	mustWrite(t, host, r[4:])
	if s := query(t, host, 2); s != 0x16 {
		t.Errorf("cover open: DLE EOT 2 = %02X, want 16", s)
	}
	p.SetCoverOpen(false)

	// Offline, then back: the next one prints, numbered 3.
	p.SetOffline(true)
	mustWrite(t, host, receipt("离线"))
	query(t, host, 1)
	p.SetOffline(false)
	mustWrite(t, host, receipt("恢复"))
	query(t, host, 1)

	rs, st := p.Receipts(), p.Stats()
	if len(rs) != 3 || rs[2].Seq != 3 || rs[2].Lines[0] != "恢复" || st.Lost != 4 || st.Printed != 3 {
		t.Errorf("receipts %+v, stats %+v", rs, st)
	}
	mu.Lock()
	defer mu.Unlock()
	var lostText []string
	for _, r := range lost {
		lostText = append(lostText, r.Lines[0])
	}
	if want := []string{"缺纸时发送", "跨越缺纸", "中途开盖", "离线"}; !slices.Equal(lostText, want) {
		t.Errorf("lost %q, want %q", lostText, want)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 {
		t.Errorf("%d receipt files, want 3", len(ents))
	}
}

func TestSilentNeverAnswers(t *testing.T) {
	p := openPrinter(t, Options{Silent: true})
	host := hostFile(t, p.Path())
	mustWrite(t, host, cat([]byte{0x10, 0x04, 0x01}, []byte("one-way"), nl, cutFull, []byte{0x10, 0x04, 0x04}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.WaitReceipts(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got, err := readN(t, host, 1, 300*time.Millisecond); err != errTimeout || len(got) != 0 {
		t.Errorf("silent printer answered % X (%v)", got, err)
	}
	if st := p.Stats(); st.StatusQueries != 2 {
		t.Errorf("stats %+v", st)
	}
}

// A real printer reacts to DLE EOT wherever it appears in the stream, even
// inside image data; so does the simulator.
func TestStatusQueryInsideData(t *testing.T) {
	p := openPrinter(t, Options{})
	host := hostFile(t, p.Path())
	mustWrite(t, host, cat(raster(3, 1, []byte{0x10, 0x04, 0x01}), cutFull))
	if got, err := readN(t, host, 1, 5*time.Second); err != nil || got[0] != 0x12 {
		t.Fatalf("got % X (%v)", got, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs, err := p.WaitReceipts(ctx, 1)
	if err != nil || len(rs[0].Images) != 1 || !bytes.Equal(rs[0].Images[0].Bits, []byte{0x10, 0x04, 0x01}) {
		t.Errorf("receipts %+v (%v)", rs, err)
	}
}

func TestCloseHangsUp(t *testing.T) {
	link := filepath.Join(t.TempDir(), "printer")
	p := openPrinter(t, Options{Link: link})
	host := hostFile(t, p.Path())
	port := hostSerial(t, p.Path()) // a second host: its exclusive mode bars only later opens
	if s := query(t, host, 1); s != 0x12 {
		t.Fatalf("DLE EOT 1 = %02X", s)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := readN(t, host, 1, 2*time.Second); err == nil || err == errTimeout {
		t.Errorf("read after Close: %v, want an error", err)
	}
	if _, err := host.Write([]byte("x")); err == nil {
		t.Error("write after Close succeeded")
	}
	if _, err := readN(t, port, 1, 2*time.Second); err == nil || err == errTimeout {
		t.Errorf("serial read after Close: %v, want an error", err)
	}
	if _, err := port.Write([]byte("x")); err == nil {
		t.Error("serial write after Close succeeded")
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("link still there: %v", err)
	}
	if _, err := p.WaitReceipts(context.Background(), 1); !errors.Is(err, ErrClosed) {
		t.Errorf("WaitReceipts after Close: %v", err)
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed")
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestLinkAndNumbering(t *testing.T) {
	requirePTY(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "not-a-link")
	os.WriteFile(file, nil, 0o644)
	if _, err := Open(Options{Link: file}); err == nil {
		t.Error("Open replaced a regular file with its link")
	}
	// A stale link is replaced; numbering goes on after the files there.
	link := filepath.Join(dir, "printer")
	os.Symlink("/dev/pts/does-not-exist", link)
	receipts := filepath.Join(dir, "receipts")
	os.MkdirAll(receipts, 0o755)
	os.WriteFile(filepath.Join(receipts, "receipt-0007.txt"), []byte("old\n"), 0o644)
	p := openPrinter(t, Options{Link: link, Dir: receipts})
	if target, _ := os.Readlink(link); target != p.Path() {
		t.Errorf("link -> %q, want %q", target, p.Path())
	}
	host := hostFile(t, link)
	mustWrite(t, host, cat([]byte("eighth"), nl, cutFull))
	query(t, host, 1)
	if b, err := os.ReadFile(filepath.Join(receipts, "receipt-0008.txt")); err != nil || string(b) != "eighth\n" {
		t.Errorf("receipt-0008.txt: %q %v", b, err)
	}
}

// BenchmarkReceipts measures receipts a minute through the pty at the
// serial speeds a kiosk printer is set to.
func BenchmarkReceipts(b *testing.B) {
	for _, baud := range []int{9600, 115200, 0} {
		b.Run(fmt.Sprintf("baud=%d", baud), func(b *testing.B) {
			p := openPrinter(b, Options{BaudDelay: baud})
			host := hostFile(b, p.Path())
			r := sampleReceipt(b)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			b.SetBytes(int64(len(r)))
			b.ResetTimer()
			go func() {
				for range b.N {
					if _, err := host.Write(r); err != nil {
						return
					}
				}
			}()
			if _, err := p.WaitReceipts(ctx, b.N); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Minutes(), "receipts/min")
		})
	}
}

// TestPaperEndStop: paper that ran out after a whole receipt is not "stopped
// at paper end"; a receipt that comes while it is out is, until the roll is
// back. This is how a host tells a torn receipt from a whole one.
func TestPaperEndStop(t *testing.T) {
	p := openPrinter(t, Options{})
	host := hostFile(t, p.Path())
	ask := func() byte {
		t.Helper()
		mustWrite(t, host, []byte{0x10, 0x04, 2})
		got, err := readN(t, host, 1, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return got[0]
	}
	mustWrite(t, host, []byte("whole\n\x1dV\x00"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.WaitReceipts(ctx, 1); err != nil {
		t.Fatal(err)
	}
	p.SetPaperOut(true)
	if b := ask(); b != 0x12 {
		t.Errorf("paper out after a whole receipt: DLE EOT 2 = %02X, want 12", b)
	}
	mustWrite(t, host, []byte("torn\n\x1dV\x00"))
	if b := ask(); b != 0x32 {
		t.Errorf("paper out with a receipt lost: DLE EOT 2 = %02X, want 32", b)
	}
	p.SetPaperOut(false)
	if b := ask(); b != 0x12 {
		t.Errorf("roll back: DLE EOT 2 = %02X, want 12", b)
	}
	if st := p.Stats(); st.Printed != 1 || st.Lost != 1 {
		t.Errorf("stats %+v, want 1 printed, 1 lost", st)
	}
}
