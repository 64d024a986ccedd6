package tap

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu"
	mifaresim "github.com/cardd/cardd/apdu/mifare/sim"
	psamsim "github.com/cardd/cardd/apdu/psam/sim"
	"github.com/cardd/cardd/door"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader"
)

var updateTaps = flag.Bool("update", false, "rewrite the golden files under testdata/taps")

// tapBench is Runner.tap on simulated readers: a card in reader "card", a
// PSAM in reader "sam" (when sam is set), and one journal. It writes down,
// in order, everything the tap does outside itself: each command to the
// card and the PSAM with its status word, each hook call, each relay
// opening and host call, and the journal at the end.
type tapBench struct {
	t     *testing.T
	r     *Runner
	store *offline.Store
	card  apdu.Transmitter
	sam   apdu.Transmitter // nil: no SAM reader
	trace []string
}

var benchNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.Local)

func newTapBench(t *testing.T) *tapBench {
	t.Helper()
	st, err := offline.Open(filepath.Join(t.TempDir(), "cardd.db"), "000000000001")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := &tapBench{t: t, store: st}
	b.r = &Runner{Logger: slog.New(slog.DiscardHandler), Timeout: time.Minute}
	return b
}

func (b *tapBench) log(format string, a ...any) { b.trace = append(b.trace, fmt.Sprintf(format, a...)) }

// loader is a Loader on the bench's journal; host may be nil.
func (b *tapBench) loader(host HostLink) *Loader {
	l := &Loader{Store: b.store, TerminalID: testTermID, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return benchNow }}
	if host != nil {
		l.Host = benchHost{b: b, h: host}
	}
	return l
}

// purchaser is a Purchaser on the bench's journal with till, and a
// simulated PSAM in reader "sam".
func (b *tapBench) purchaser(till *Till) *Purchaser {
	b.t.Helper()
	f, err := psamsim.NewSAMFile(samTermID, testMasters)
	if err != nil {
		b.t.Fatal(err)
	}
	b.sam = psamsim.NewSimPSAM(f, "")
	return &Purchaser{Store: b.store, Till: till, TerminalID: testTermID, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return benchNow }}
}

// pos is a Purchaser (purchaser) whose till has a sale of sale fen armed
// (none when 0); with wallet it pays M1 wallets too.
func (b *tapBench) pos(sale int64, wallet bool) *Purchaser {
	b.t.Helper()
	till := &Till{}
	p := b.purchaser(till)
	if wallet {
		w := testWallet
		p.Wallet = &w
	}
	if sale > 0 {
		if _, err := till.Arm(sale, ""); err != nil {
			b.t.Fatal(err)
		}
	}
	return p
}

// door is a Door on the bench's journal with the test access list.
func (b *tapBench) door() *Door {
	b.t.Helper()
	l, err := door.ParseList([]byte(testList))
	if err != nil {
		b.t.Fatal(err)
	}
	ix, err := door.NewIndex(l, []string{"residents"})
	if err != nil {
		b.t.Fatal(err)
	}
	d := &Door{Store: b.store, Relay: benchRelay{b}, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return benchNow }}
	d.SetList(ix)
	return d
}

type benchRelay struct{ b *tapBench }

func (r benchRelay) Open(context.Context) error { r.b.log("relay open"); return nil }

type benchHost struct {
	b *tapBench
	h HostLink
}

func (h benchHost) CardCredits(ctx context.Context, card string) (hostapi.CardCreditsResponse, error) {
	h.b.log("host CardCredits %s", card)
	return h.h.CardCredits(ctx, card)
}

func (h benchHost) AuthorizeLoad(ctx context.Context, req hostapi.LoadAuthorizeRequest) (hostapi.LoadAuthorizeResponse, error) {
	h.b.log("host AuthorizeLoad %s %d", req.CreditID, req.AmountFen)
	return h.h.AuthorizeLoad(ctx, req)
}

func (h benchHost) CompleteLoad(ctx context.Context, req hostapi.LoadCompleteRequest) (hostapi.LoadCompleteResponse, error) {
	h.b.log("host CompleteLoad %s not_applied=%v", req.CreditID, req.NotApplied)
	return h.h.CompleteLoad(ctx, req)
}

// benchSession is a reader's session: it writes down each command's
// header and length and the answer's status word.
type benchSession struct {
	b    *tapBench
	name string
	t    apdu.Transmitter
}

func (s benchSession) Transmit(cmd []byte) ([]byte, error) {
	head := cmd
	if len(head) > 4 {
		head = head[:4]
	}
	resp, err := s.t.Transmit(cmd)
	switch {
	case err != nil:
		s.b.log("%s> %X/%d: %v", s.name, head, len(cmd), err)
	case len(resp) >= 2:
		s.b.log("%s> %X/%d: %X", s.name, head, len(cmd), resp[len(resp)-2:])
	default:
		s.b.log("%s> %X/%d: %X", s.name, head, len(cmd), resp)
	}
	return resp, err
}

func (s benchSession) Close() error { s.b.log("close %s", s.name); return nil }

func (b *tapBench) open(_ context.Context, name string) (SAMSession, error) {
	b.log("open %s", name)
	switch {
	case name == "card":
		return benchSession{b, name, b.card}, nil
	case name == "sam" && b.sam != nil:
		return benchSession{b, name, b.sam}, nil
	}
	return nil, fmt.Errorf("no reader %q", name)
}

// tap taps b.card once, with every hook writing itself down.
func (b *tapBench) tap() Result {
	b.t.Helper()
	if b.sam != nil {
		b.r.samReader = "sam"
	}
	b.r.OnAPDU = func(time.Duration) { b.log("OnAPDU") }
	b.r.OnBalance = func(res Result) { b.log("OnBalance %s", summary(res)) }
	b.r.OnLeave = func(res Result) { b.log("OnLeave apdus=%d %s", res.CardAPDUs, summary(res)) }
	b.r.BeforeClose = func(_ apdu.Transmitter, res Result) { b.log("BeforeClose %s", summary(res)) }
	b.r.OnTap = func(res Result) { b.log("OnTap %s", summary(res)) }
	res := b.r.tap(context.Background(), b.open, reader.Event{Kind: reader.CardInserted, Reader: "card", Time: time.Now()})
	rows, err := b.store.List(context.Background(), 0, 100)
	if err != nil {
		b.t.Fatal(err)
	}
	for i := len(rows) - 1; i >= 0; i-- {
		r := rows[i]
		b.log("journal %s %s %s purse=%s counter=%d balance=%d amount=%d credit=%s detail=%q",
			r.Kind, r.State, r.Card, r.Purse, r.Counter, r.BalanceFen, r.AmountFen, r.CreditID, r.Detail)
	}
	return res
}

// summary is what a tap's result says, without its clock.
func summary(res Result) string {
	var s strings.Builder
	fmt.Fprintf(&s, "outcome=%s", res.Outcome())
	if cr := res.Read; cr != nil {
		fmt.Fprintf(&s, " read{card=%s balance=%d apdus=%d balance_apdus=%d holder=%v log=%d}",
			cr.Info.CardNumber, cr.Balance, cr.APDUs, cr.BalanceAPDUs, cr.Holder != nil, len(cr.Log))
	}
	if d := res.Door; d != nil {
		fmt.Fprintf(&s, " door{reason=%s card=%s opened=%v journaled=%v}", d.Decision.Reason, d.Decision.Card, d.Opened, d.JournalID != "")
	}
	if l := res.Load; l != nil {
		fmt.Fprintf(&s, " load{balance=%d offline=%v", l.Balance, l.HostOffline)
		for _, x := range l.Loads {
			fmt.Fprintf(&s, " %s+%d applied=%v refused=%q", x.CreditID, x.AmountFen, x.Applied, x.Refused)
		}
		for _, x := range l.Recovered {
			fmt.Fprintf(&s, " recovered %s applied=%v", x.CreditID, x.Applied)
		}
		s.WriteString("}")
	}
	if p := res.Purchase; p != nil {
		fmt.Fprintf(&s, " purchase{card=%s sale=%d paid=%v balance=%d spent_today=%d pin=%v mac2=%v journaled=%v recovered=%d}",
			p.Card, p.Sale.AmountFen, p.Paid, p.Balance, p.SpentToday, p.PINVerified, p.MAC2Verified, p.JournalID != "", len(p.Recovered))
	}
	if res.Err != nil {
		fmt.Fprintf(&s, " err=%q", res.Err)
	}
	return s.String()
}

// m1Bench is an M1 wallet card 04A1B2C3 holding balance.
func m1BenchCard(t *testing.T, balance int64) *mifaresim.SimCard {
	t.Helper()
	f, err := mifaresim.NewCardFile([4]byte{0x04, 0xA1, 0xB2, 0xC3}, testWallet, balance)
	if err != nil {
		t.Fatal(err)
	}
	return mifaresim.NewSimCard(f, "")
}

// failFirst answers the first command with err, and passes the others on.
type failFirst struct {
	t    apdu.Transmitter
	err  error
	done bool
}

func (f *failFirst) Transmit(cmd []byte) ([]byte, error) {
	if !f.done {
		f.done = true
		return nil, f.err
	}
	return f.t.Transmit(cmd)
}

// TestTapModes taps a card in each mode through Runner.tap and compares
// everything the tap did, in order, with testdata/taps: the commands to
// the card and the PSAM, the hooks, the relay, the host and the journal.
// go test -run TestTapModes -update rewrites the files.
func TestTapModes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, b *tapBench)
	}{
		{"kiosk/epurse_load", func(t *testing.T, b *tapBench) {
			card := newTestCard(t, "王小明", 3, nil)
			b.card, b.r.Loader = card, b.loader(newFakeLoadHost(t, card, 5000))
		}},
		{"kiosk/epurse_denied", func(t *testing.T, b *tapBench) {
			card := newTestCard(t, "王小明", 3, nil)
			b.card, b.r.Loader = card, b.loader(newFakeLoadHost(t, card, 5000))
			if err := b.store.SetDenied(context.Background(), testNumber, true, "lost"); err != nil {
				t.Fatal(err)
			}
		}},
		{"kiosk/epurse_expired", func(t *testing.T, b *tapBench) {
			card := newTestCard(t, "王小明", 3, nil)
			b.card, b.r.Loader = card, b.loader(newFakeLoadHost(t, card, 5000))
			b.r.Loader.Now = func() time.Time { return time.Date(2030, 1, 1, 12, 0, 0, 0, time.Local) }
		}},
		{"kiosk/epurse_not_recognised", func(t *testing.T, b *tapBench) {
			// The FCI's copy of EF 0x15 has a start date in month 13.
			card := newTestCard(t, "王小明", 3, nil)
			b.card, b.r.Loader = apdu.TransmitterFunc(func(cmd []byte) ([]byte, error) {
				resp, err := card.Transmit(cmd)
				if i := bytes.Index(resp, []byte{0x9F, 0x0C, 0x1E}); err == nil && cmd[1] == 0xA4 && i >= 0 {
					resp = bytes.Clone(resp)
					resp[i+3+20+2] = 0x13
				}
				return resp, err
			}), b.loader(newFakeLoadHost(t, card, 5000))
		}},
		{"kiosk/epurse_load_cached", func(t *testing.T, b *tapBench) {
			// The pull is fresh and cached cr-1: no host lookup before INIT.
			card := newTestCard(t, "王小明", 3, nil)
			b.card, b.r.Loader = card, b.loader(newFakeLoadHost(t, card, 5000))
			b.r.Loader.CreditsFresh = time.Minute
			if err := b.store.ApplyPull(context.Background(), []offline.Credit{{ID: "cr-1", Card: testNumber, AmountFen: 5000}}, nil, nil, "c1"); err != nil {
				t.Fatal(err)
			}
		}},
		{"kiosk/epurse_load_listed", func(t *testing.T, b *tapBench) {
			// The host's authorization of cr-1 lists cr-2: loaded on the
			// same tap without another lookup.
			card := newTestCard(t, "王小明", 3, nil)
			h := newFakeLoadHost(t, card, 5000, 250)
			h.listOthers = true
			b.card, b.r.Loader = card, b.loader(h)
			b.r.Loader.CreditsFresh = time.Minute
			if err := b.store.ApplyPull(context.Background(), []offline.Credit{{ID: "cr-1", Card: testNumber, AmountFen: 5000}}, nil, nil, "c1"); err != nil {
				t.Fatal(err)
			}
		}},
		{"kiosk/m1_card", func(t *testing.T, b *tapBench) {
			b.card, b.r.Loader = m1BenchCard(t, 5000), b.loader(nil)
		}},
		{"kiosk/read_only", func(t *testing.T, b *tapBench) {
			b.card = newTestCard(t, "王小明", 3, nil)
		}},
		{"pos/epurse_sale", func(t *testing.T, b *tapBench) {
			b.card, b.r.Loader, b.r.Purchaser = newTestCard(t, "王小明", 3, nil), b.loader(nil), b.pos(1250, false)
		}},
		{"pos/epurse_load_and_sale", func(t *testing.T, b *tapBench) {
			card := newTestCard(t, "王小明", 3, nil)
			b.card, b.r.Loader, b.r.Purchaser = card, b.loader(newFakeLoadHost(t, card, 5000)), b.pos(13000, false)
		}},
		{"pos/epurse_no_sale", func(t *testing.T, b *tapBench) {
			b.card, b.r.Loader, b.r.Purchaser = newTestCard(t, "王小明", 3, nil), b.loader(nil), b.pos(0, false)
		}},
		{"pos/epurse_insufficient", func(t *testing.T, b *tapBench) {
			b.card, b.r.Loader, b.r.Purchaser = newTestCard(t, "王小明", 3, nil), b.loader(nil), b.pos(20000, false)
		}},
		{"pos/epurse_denied_settles", func(t *testing.T, b *tapBench) {
			card := newTestCard(t, "王小明", 3, nil)
			b.card, b.r.Loader, b.r.Purchaser = card, b.loader(nil), b.pos(1250, false)
			cr, err := ReadPurse(card, ReadOptions{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			card.Reset()
			unresolvedPurchase(t, b.store, cr, card.File().EPOfflineCounter)
			if err := b.store.SetDenied(context.Background(), testNumber, true, "lost"); err != nil {
				t.Fatal(err)
			}
		}},
		{"pos/epurse_no_psam", func(t *testing.T, b *tapBench) {
			b.card, b.r.Loader, b.r.Purchaser = newTestCard(t, "王小明", 3, nil), b.loader(nil), b.pos(1250, false)
			b.sam = nil
		}},
		{"pos/epurse_without_loader", func(t *testing.T, b *tapBench) {
			b.card, b.r.Purchaser = newTestCard(t, "王小明", 3, nil), b.pos(1250, false)
		}},
		{"pos/epurse_pulled_after_balance", func(t *testing.T, b *tapBench) {
			b.card, b.r.Loader, b.r.Purchaser = &cutAfter{t: newTestCard(t, "王小明", 3, nil), n: 2}, b.loader(nil), b.pos(1250, true)
		}},
		{"pos/m1_sale", func(t *testing.T, b *tapBench) {
			b.card, b.r.Loader, b.r.Purchaser = m1BenchCard(t, 5000), b.loader(nil), b.pos(700, true)
		}},
		{"pos/m1_sale_without_loader", func(t *testing.T, b *tapBench) {
			b.card, b.r.Purchaser = m1BenchCard(t, 5000), b.pos(700, true)
		}},
		{"pos/m1_denied", func(t *testing.T, b *tapBench) {
			b.card, b.r.Loader, b.r.Purchaser = m1BenchCard(t, 5000), b.loader(nil), b.pos(700, true)
			if err := b.store.SetDenied(context.Background(), m1Card, true, "lost"); err != nil {
				t.Fatal(err)
			}
		}},
		{"pos/m1_insufficient", func(t *testing.T, b *tapBench) {
			b.card, b.r.Loader, b.r.Purchaser = m1BenchCard(t, 500), b.loader(nil), b.pos(700, true)
		}},
		{"pos/m1_load", func(t *testing.T, b *tapBench) {
			// The load's completion reaches the host after the card left.
			b.card, b.r.Loader, b.r.Purchaser = m1BenchCard(t, 5000), b.loader(newFakeM1Host(t, 2000)), b.pos(0, true)
		}},
		{"pos/m1_load_and_sale", func(t *testing.T, b *tapBench) {
			// The load's row is done before the sale's write-ahead; its
			// completion reaches the host after the card left.
			b.card, b.r.Loader, b.r.Purchaser = m1BenchCard(t, 5000), b.loader(newFakeM1Host(t, 2000)), b.pos(700, true)
		}},
		{"pos/m1_without_wallet", func(t *testing.T, b *tapBench) {
			b.card, b.r.Loader, b.r.Purchaser = m1BenchCard(t, 5000), b.loader(nil), b.pos(700, false)
		}},
		{"door/epurse_open", func(t *testing.T, b *tapBench) {
			b.card, b.r.Door = newTestCard(t, "王小明", 3, nil), b.door()
		}},
		{"door/epurse_open_and_load", func(t *testing.T, b *tapBench) {
			card := newTestCard(t, "王小明", 3, nil)
			b.card, b.r.Door, b.r.Loader = card, b.door(), b.loader(newFakeLoadHost(t, card, 5000))
		}},
		{"door/epurse_no_list", func(t *testing.T, b *tapBench) {
			card := newTestCard(t, "王小明", 3, nil)
			b.card, b.r.Door, b.r.Loader = card, b.door(), b.loader(newFakeLoadHost(t, card, 5000))
			b.r.Door.SetList(nil)
		}},
		{"door/epurse_read_fails_after_balance", func(t *testing.T, b *tapBench) {
			card := newTestCard(t, "王小明", 3, nil)
			b.card, b.r.Door, b.r.Loader = &cutAfter{t: card, n: 2}, b.door(), b.loader(newFakeLoadHost(t, card, 5000))
		}},
		{"door/pulled_before_balance", func(t *testing.T, b *tapBench) {
			b.card, b.r.Door = &cutAfter{t: newTestCard(t, "王小明", 3, nil), n: 0}, b.door()
		}},
		{"door/m1_by_uid", func(t *testing.T, b *tapBench) {
			b.card, b.r.Door, b.r.Loader = m1BenchCard(t, 5000), b.door(), b.loader(nil)
		}},
		{"door/m1_by_uid_with_wallet", func(t *testing.T, b *tapBench) {
			b.card, b.r.Door, b.r.Purchaser = m1BenchCard(t, 5000), b.door(), b.pos(700, true)
		}},
		{"door/m1_refused_with_wallet", func(t *testing.T, b *tapBench) {
			b.card, b.r.Door, b.r.Purchaser = m1BenchCard(t, 5000), b.door(), b.pos(700, true)
			b.r.Door.SetList(nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newTapBench(t)
			// The kiosk page shows the holder and the log (daemon/kiosk.go).
			b.r.Read.History = strings.HasPrefix(tc.name, "kiosk/")
			tc.setup(t, b)
			b.tap()
			got := strings.Join(b.trace, "\n") + "\n"
			path := filepath.Join("testdata", "taps", strings.ReplaceAll(tc.name, "/", "_")+".txt")
			if *updateTaps {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("the tap did otherwise than %s:\n--- got\n%s--- want\n%s", path, got, want)
			}
		})
	}
}

// TestTapReadsM1 is when a tap reads the card as an M1 wallet: the purse
// read failed with the card still answering, no door decides the tap,
// and a Purchaser has a Wallet.
func TestTapReadsM1(t *testing.T) {
	sw := func(s uint16) error { return fmt.Errorf("select: %w", &apdu.StatusError{SW: s}) }
	for _, tc := range []struct {
		name                    string
		first                   error // the first command's answer; nil: the card's own
		door, purchaser, wallet bool
		epurse                  bool // an e-purse card on the deny list, not an M1 card
		want                    bool
	}{
		{"no e-purse", nil, false, true, true, false, true},
		{"6A82", sw(0x6A82), false, true, true, false, true},
		{"6A81 blocked", sw(0x6A81), false, true, true, false, true},
		{"malformed", fmt.Errorf("select: %w", apdu.ErrMalformed), false, true, true, false, true},
		{"a door decides", nil, true, true, true, false, false},
		{"no wallet", nil, false, true, false, false, false},
		{"no purchaser", nil, false, false, false, false, false},
		{"the e-purse read, the card refused", nil, false, true, true, true, false},
		{"card removed", &reader.Error{Op: "transmit", Kind: reader.ErrCardRemoved, Err: errors.New("gone")}, false, true, true, false, false},
		{"tap timeout", fmt.Errorf("select: %w", ErrTapTimeout), false, true, true, false, false},
		{"no pcscd", reader.ErrNoService, false, true, true, false, false},
		{"reader gone", fmt.Errorf("transmit: %w", reader.ErrReaderGone), false, true, true, false, false},
		{"reader busy", &reader.Error{Op: "transmit", Kind: reader.ErrReaderBusy, Err: errors.New("busy")}, false, true, true, false, false},
		{"stopped", &reader.Error{Op: "transmit", Err: context.Canceled}, false, true, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newTapBench(t)
			var card apdu.Transmitter = m1BenchCard(t, 5000)
			if tc.epurse {
				card = newTestCard(t, "王小明", 0, nil)
				if err := b.store.SetDenied(context.Background(), testNumber, true, "lost"); err != nil {
					t.Fatal(err)
				}
			}
			if tc.first != nil {
				card = &failFirst{t: card, err: tc.first}
			}
			b.card, b.r.Loader = card, b.loader(nil)
			if tc.purchaser {
				b.r.Purchaser = b.pos(0, tc.wallet)
			}
			if tc.door {
				// A door that refuses the card: the tap ends in an error,
				// as for a card with no e-purse.
				b.r.Door = b.door()
				b.r.Door.SetList(nil)
			}
			res := b.tap()
			uids := 0
			for _, l := range b.trace {
				if strings.HasPrefix(l, "card> FFCA0000") {
					uids++
				}
			}
			wantUIDs := 0
			if tc.want {
				wantUIDs++
			}
			if tc.door {
				wantUIDs++ // the door knows the card by its UID
			}
			readM1 := res.Purchase != nil && res.Purchase.Card == m1Card
			if readM1 != tc.want || uids != wantUIDs {
				t.Errorf("read as an M1 wallet %v with %d UID reads, want %v with %d:\n%s", readM1, uids, tc.want, wantUIDs, strings.Join(b.trace, "\n"))
			}
			if tc.want && (res.Read != nil || res.Outcome() != OutcomeOK) {
				t.Errorf("an M1 tap: %s", summary(res))
			}
		})
	}
}

// TestTapCountsCardAPDUs: Result.CardAPDUs is every command the card was
// sent until the leave point (a money tap's OnLeave; the last command
// otherwise), and ToLeave is when the last of them was answered: after the
// start, and no later than the tap's end. The kiosk's history, read after
// the money, does not count.
func TestTapCountsCardAPDUs(t *testing.T) {
	for _, name := range []string{"kiosk load", "pos sale", "no card session"} {
		t.Run(name, func(t *testing.T) {
			b := newTapBench(t)
			card := newTestCard(t, "王小明", 3, nil)
			b.card = card
			switch name {
			case "kiosk load":
				b.r.Loader = b.loader(newFakeLoadHost(t, card, 5000))
				b.r.Read.History = true
			case "pos sale":
				b.r.Loader, b.r.Purchaser = b.loader(nil), b.pos(1250, false)
				b.r.samReader = "sam"
			case "no card session":
				b.card = nil
			}
			open := b.open
			if b.card == nil {
				open = func(context.Context, string) (SAMSession, error) { return nil, errors.New("no card") }
			}
			b.r.OnLeave = func(Result) { b.log("OnLeave") }
			res := b.r.tap(context.Background(), open, reader.Event{Kind: reader.CardInserted, Reader: "card", Time: time.Now()})
			sent, after := 0, 0
			for _, line := range b.trace {
				switch {
				case line == "OnLeave":
					after, sent = -sent, 0
				case strings.HasPrefix(line, "card> "):
					sent++
				}
			}
			if after < 0 { // sent counted the commands after the leave
				sent, after = -after, sent
			}
			if name == "kiosk load" && (sent != 4 || after != 6) {
				t.Errorf("%d commands before the leave point and %d after, want 4 (SELECT, GET BALANCE, INIT, CREDIT) and 6 (the history)", sent, after)
			}
			if res.CardAPDUs != sent {
				t.Errorf("CardAPDUs = %d, the card was sent %d", res.CardAPDUs, sent)
			}
			switch {
			case sent == 0 && res.ToLeave != 0:
				t.Errorf("ToLeave = %v without a command", res.ToLeave)
			case sent > 0 && (res.ToLeave <= 0 || res.ToLeave > res.ToDone):
				t.Errorf("ToLeave = %v, ToDone = %v", res.ToLeave, res.ToDone)
			}
			if name == "pos sale" && (res.Purchase == nil || !res.Purchase.Paid) {
				t.Fatalf("the sale was not paid: %v", res.Err)
			}
		})
	}
}

// TestCrashAfterLeave kills the daemon (its journal closed, as by a crash)
// at a money tap's leave point: the card has answered CREDIT FOR LOAD or
// DEBIT FOR PURCHASE, and the journal's last commit, left for after the
// card, never happens. The write-ahead row is on disk in intent (money
// rule 2), and the card's next tap, after a restart, settles it from the
// card's counter (rule 3): the money is on the card once, and the row done
// with the card's TAC.
func TestCrashAfterLeave(t *testing.T) {
	for _, kind := range []string{offline.KindLoad, offline.KindPurchase} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "cardd.db")
			b := newTapBench(t)
			var err error
			if b.store, err = offline.Open(path, "000000000001"); err != nil {
				t.Fatal(err)
			}
			card := newTestCard(t, "王小明", 3, nil)
			b.card = card
			start := card.File().EPBalance
			want := start - 1250
			if kind == offline.KindLoad {
				b.r.Loader = b.loader(newFakeLoadHost(t, card, 5000))
				want = start + 5000
			} else {
				b.r.Loader, b.r.Purchaser = b.loader(nil), b.pos(1250, false)
				b.r.samReader = "sam"
			}
			b.r.OnLeave = func(Result) { b.store.Close() } // the kill
			ev := reader.Event{Kind: reader.CardInserted, Reader: "card", Time: time.Now()}
			b.r.tap(ctx, b.open, ev)
			if got := card.File().EPBalance; got != want {
				t.Fatalf("card holds %d after the tap, want %d", got, want)
			}

			// The restart: the journal opened again, the card tapped again.
			if b.store, err = offline.Open(path, "000000000001"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.store.Close() })
			rows, err := b.store.Unresolved(ctx, testNumber)
			if err != nil || len(rows) != 1 || rows[0].Kind != kind || rows[0].State != offline.StateIntent {
				t.Fatalf("journal after the kill: %+v, %v; want the %s row in intent", rows, err, kind)
			}
			id := rows[0].ID
			b.r.OnLeave = nil
			b.r.Loader.Store = b.store
			if b.r.Purchaser != nil {
				b.r.Purchaser.Store = b.store
			}
			card.Reset()
			res := b.r.tap(ctx, b.open, ev)
			if res.Err != nil {
				t.Fatalf("tap after the restart: %v", res.Err)
			}
			if got := card.File().EPBalance; got != want {
				t.Fatalf("card holds %d after the recovery, want %d: the money moved once", got, want)
			}
			row, err := b.store.Get(ctx, id)
			if err != nil || row.State != offline.StateDone || row.TAC == "" {
				t.Fatalf("row after the recovery: %+v, %v; want done with the card's TAC", row, err)
			}
		})
	}
}
