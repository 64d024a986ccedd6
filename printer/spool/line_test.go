package spool

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer"
	"github.com/cardd/cardd/printer/sim"
)

// openSim starts the virtual printer on a pty, linked at link. Without a
// pty the test fails under CI=true and skips elsewhere.
func openSim(t *testing.T, link string, opt sim.Options) *sim.Printer {
	t.Helper()
	opt.Link = link
	p, err := sim.Open(opt)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("virtual printer on a pty: %v", err)
		}
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

var renderer = Renderer{Options: printer.Options{Layout: printer.Layout58, Mode: printer.TextGB18030, Symbol: printer.SymbolQR},
	Merchant: "测试大学一卡通", Footer: []string{"谢谢惠顾"}}

func topUp(i int) Facts {
	return Facts{Kind: KindTopUp, Time: time.Date(2026, 11, 23, 12, 0, i, 0, time.Local), TerminalID: "000000000001",
		Card: "3101000000800000", Holder: "张三", BalanceBeforeFen: int64(1000 * i), AmountFen: 5000,
		BalanceFen: int64(1000*i + 5000), Reference: fmt.Sprintf("000000000001-%d", i)}
}

func queueTopUps(t *testing.T, s *offline.Store, from, n int) []string {
	t.Helper()
	var want []string
	for i := from; i < from+n; i++ {
		f := topUp(i)
		nr, err := f.NewReceipt()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.QueueReceipt(context.Background(), nr); err != nil {
			t.Fatal(err)
		}
		pr, _ := renderer.Receipt(offline.Receipt{Body: nr.Body})
		want = append(want, printer.Text(pr, printer.Layout58.Cols)...)
		want = append(want, "\x00") // receipt boundary
	}
	return want
}

func printedText(p *sim.Printer) []string {
	var got []string
	for _, r := range p.Receipts() {
		lines := r.Lines
		for len(lines) > 0 && lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1] // the feed before the cut
		}
		got = append(got, lines...)
		got = append(got, "\x00")
	}
	return got
}

func realWorker(t *testing.T, s *offline.Store, link string) *Worker {
	t.Helper()
	line := &Line{Port: link, Mode: serial.Mode{BaudRate: 115200, DataBits: 8}, StatusTimeout: 300 * time.Millisecond}
	t.Cleanup(func() { line.Close() })
	w := &Worker{Queue: s, Printer: line, Render: renderer.Render, StatusChecks: true,
		Poll: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	w.Start(context.Background())
	t.Cleanup(w.Stop)
	return w
}

func waitPrinted(t *testing.T, s *offline.Store, p *sim.Printer, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left, err := s.ReceiptsWaiting(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if left == 0 && len(p.Receipts()) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d receipts printed, %d still queued after 30 s (want %d printed)", len(p.Receipts()), left, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPaperOutThroughPTY: 20 top-up receipts through go.bug.st/serial to the
// virtual printer, which runs out of paper after the 7th has printed and
// loses what it is sent meanwhile; after the roll is back every receipt is
// on paper once, in order, each exactly the expected Chinese text.
func TestPaperOutThroughPTY(t *testing.T) {
	link := filepath.Join(t.TempDir(), "printer")
	store := newQueue(t, 0)
	want := queueTopUps(t, store, 0, 20)
	var p *sim.Printer
	out := make(chan struct{})
	p = openSim(t, link, sim.Options{OnReceipt: func(r sim.Receipt) {
		if r.Seq == 7 {
			p.SetPaperOut(true)
			close(out)
		}
	}})
	realWorker(t, store, link)
	<-out
	time.Sleep(500 * time.Millisecond) // the worker keeps trying meanwhile
	if n := len(p.Receipts()); n != 7 {
		t.Fatalf("%d receipts on paper while out of paper, want 7", n)
	}
	p.SetPaperOut(false)
	waitPrinted(t, store, p, 20)
	if got := printedText(p); !slices.Equal(got, want) {
		t.Errorf("printed %d lines, want %d; first difference:\n%s", len(got), len(want), firstDiff(got, want))
	}
	t.Logf("virtual printer stats: %+v", p.Stats())
}

// TestPortVanishes: the printer's port goes away (the simulator stops, as a
// USB-serial cable pulled) with receipts queued, and comes back at the same
// path: the worker reopens it by itself and prints them, once each.
func TestPortVanishes(t *testing.T) {
	link := filepath.Join(t.TempDir(), "printer")
	store := newQueue(t, 0)
	queueTopUps(t, store, 0, 3)
	p := openSim(t, link, sim.Options{})
	realWorker(t, store, link)
	waitPrinted(t, store, p, 3)
	p.Close()

	more := queueTopUps(t, store, 3, 2)
	time.Sleep(300 * time.Millisecond) // failing attempts against a missing port
	if n, _ := store.ReceiptsWaiting(context.Background()); n != 2 {
		t.Fatalf("%d receipts waiting with the port gone, want 2", n)
	}
	p2 := openSim(t, link, sim.Options{})
	waitPrinted(t, store, p2, 2)
	if got := printedText(p2); !slices.Equal(got, more) {
		t.Errorf("after the port came back:\n%s", firstDiff(got, more))
	}
}

func firstDiff(got, want []string) string {
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("line %d: got %q, want %q", i, g, w)
		}
	}
	return "(none)"
}

// BenchmarkPrintQueue prints b.N queued top-up receipts (58 mm, GB18030, QR)
// through the worker, the serial line and the virtual printer paced to a
// line of 9600 and 115200 baud, with status checks as the daemon does. It reports receipts per minute beside the
// line's own limit for receipts of that size (bytes per second = baud/10).
func BenchmarkPrintQueue(b *testing.B) {
	for _, baud := range []int{9600, 115200} {
		b.Run(fmt.Sprintf("baud=%d", baud), func(b *testing.B) {
			link := filepath.Join(b.TempDir(), "printer")
			p, err := sim.Open(sim.Options{Link: link, BaudDelay: baud})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			store, err := offline.Open(filepath.Join(b.TempDir(), "cardd.db"), "000000000001")
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			nr, err := topUp(1).NewReceipt()
			if err != nil {
				b.Fatal(err)
			}
			data, err := renderer.Render(offline.Receipt{Body: nr.Body})
			if err != nil {
				b.Fatal(err)
			}
			for range b.N {
				if _, err := store.QueueReceipt(context.Background(), nr); err != nil {
					b.Fatal(err)
				}
			}
			// A pty drains at once, so the status answer after a receipt waits
			// for the paced printer to read it: allow for that at 9600.
			line := &Line{Port: link, Mode: serial.Mode{BaudRate: baud, DataBits: 8}, StatusTimeout: 10 * time.Second}
			defer line.Close()
			w := &Worker{Queue: store, Printer: line, Render: renderer.Render, StatusChecks: true, Poll: 10 * time.Millisecond}
			b.ResetTimer()
			w.Start(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			defer cancel()
			if _, err := p.WaitReceipts(ctx, b.N); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			w.Stop()
			if st := p.Stats(); st.Printed != b.N || st.Lost != 0 {
				b.Fatalf("printer stats %+v, want %d printed", st, b.N)
			}
			perMin := float64(b.N) / b.Elapsed().Minutes()
			limit := 60 * float64(baud) / 10 / float64(len(data))
			b.ReportMetric(perMin, "receipts/min")
			b.ReportMetric(limit, "line-limit-receipts/min")
			b.ReportMetric(perMin/limit, "of-line-limit")
			b.ReportMetric(float64(len(data)), "bytes/receipt")
			b.ReportMetric(float64(baud)/10, "line-bytes/s")
		})
	}
}

// TestExactTextThroughPTY: every kind of receipt, at 58 and 80 mm, in both
// Chinese text modes, goes through go.bug.st/serial to the virtual printer,
// which decodes it back: the lines equal printer.Text exactly, and the QR
// code holds the reference.
func TestExactTextThroughPTY(t *testing.T) {
	link := filepath.Join(t.TempDir(), "printer")
	p := openSim(t, link, sim.Options{})
	line := &Line{Port: link, Mode: serial.Mode{BaudRate: 115200, DataBits: 8}}
	defer line.Close()
	facts := []Facts{
		topUp(3),
		{Kind: KindBalance, Time: time.Date(2026, 11, 23, 8, 30, 0, 0, time.Local), TerminalID: "000000000001",
			Card: "3101000000800001", Holder: "阿依古丽·买买提", BalanceFen: 123456, Reference: "000000000001-7"},
		{Kind: KindPurchase, Time: time.Date(2026, 11, 23, 12, 5, 9, 0, time.Local), TerminalID: "0000000000A2",
			Card: "3101000000800002", Holder: "李四", AmountFen: 1250, BalanceFen: 8750, Reference: "0000000000A2-19"},
		{Kind: KindTest, Time: time.Date(2026, 11, 23, 9, 0, 0, 0, time.Local), TerminalID: "000000000001"},
	}
	n := 0
	for _, layout := range []printer.Layout{printer.Layout58, printer.Layout80} {
		for _, mode := range []printer.TextMode{printer.TextGB18030, printer.TextGBK} {
			r := renderer
			r.Options.Layout, r.Options.Mode = layout, mode
			for _, f := range facts {
				nr, err := f.NewReceipt()
				if err != nil {
					t.Fatal(err)
				}
				q := offline.Receipt{Body: nr.Body}
				data, err := r.Render(q)
				if err != nil {
					t.Fatal(err)
				}
				n++
				rc, lines := printOne(t, line, p, n, data)
				pr, _ := r.Receipt(q)
				want := printer.Text(pr, layout.Cols)
				name := fmt.Sprintf("%s at %d columns, mode %d", f.Kind, layout.Cols, mode)
				if !slices.Equal(lines, want) {
					t.Errorf("%s:\n%s", name, firstDiff(lines, want))
				}
				if rc.ErrorCount != 0 {
					t.Errorf("%s: decoder errors %q", name, rc.Errors)
				}
				if f.Reference != "" && !slices.Equal(rc.QR, []string{f.Reference}) {
					t.Errorf("%s: QR %q, want %q", name, rc.QR, f.Reference)
				}
			}
		}
	}
	if testing.Verbose() {
		t.Logf("the first receipt as printed:\n%s", p.Receipts()[0].Text())
	}
}

// TestStateIsOneRoundTrip: State sends DLE EOT 1, 2 and 4 in one write and
// takes the three answers together. The peer here answers only once it has
// all three queries, so a line that waited for each answer before asking the
// next would get none. An error in the answer to DLE EOT 2 costs one more
// round trip, for its cause (DLE EOT 3).
func TestStateIsOneRoundTrip(t *testing.T) {
	a, b := ptyPair(t)
	peer, err := serial.Open(b, &serial.Mode{BaudRate: 115200, DataBits: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := peer.SetReadTimeout(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	line := &Line{Port: a, Mode: serial.Mode{BaudRate: 115200, DataBits: 8}, StatusTimeout: time.Second}
	defer line.Close()

	// serve answers each batch of queries once it has all of it.
	serve := func(batches ...[2][]byte) <-chan error {
		done := make(chan error, 1)
		go func() {
			for _, qa := range batches {
				var got []byte
				buf := make([]byte, 16)
				deadline := time.Now().Add(3 * time.Second)
				for len(got) < len(qa[0]) && time.Now().Before(deadline) {
					n, err := peer.Read(buf)
					if err != nil {
						done <- err
						return
					}
					got = append(got, buf[:n]...)
				}
				if !slices.Equal(got, qa[0]) {
					done <- fmt.Errorf("queries % X, want % X", got, qa[0])
					return
				}
				if _, err := peer.Write(qa[1]); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		return done
	}
	all := []byte{0x10, 0x04, 1, 0x10, 0x04, 2, 0x10, 0x04, 4}

	done := serve([2][]byte{all, {0x12, 0x12, 0x12}})
	st, err := line.State(context.Background())
	if err != nil || !st.CanPrint() {
		t.Fatalf("ready printer: %+v, %v; want it able to print", st, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Offline with an error (0x1A, 0x52): the cause is asked next, alone.
	done = serve([2][]byte{all, {0x1A, 0x52, 0x12}}, [2][]byte{{0x10, 0x04, 3}, {0x52}})
	st, err = line.State(context.Background())
	if err != nil || !st.Error || !st.AutoRecoverableError || st.CanPrint() {
		t.Fatalf("printer in error: %+v, %v; want the error and its cause", st, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
