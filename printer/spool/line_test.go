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
