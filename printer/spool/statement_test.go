package spool

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer"
	"github.com/cardd/cardd/printer/sim"
)

var beijing = time.FixedZone("CST", 8*3600)

// statementFacts is a balance slip with the card's five newest
// transactions, as a kiosk queues it.
func statementFacts() Facts {
	return Facts{Kind: KindBalance, Time: time.Date(2026, 11, 23, 12, 30, 0, 0, beijing), TerminalID: "000000000001",
		Card: "3101000000800001", Holder: "张三", BalanceFen: 18412, Reference: "000000000001-9",
		Transactions: []StatementLine{
			{Time: time.Date(2026, 11, 23, 12, 5, 9, 0, beijing), Kind: TxPurchase, AmountFen: -559, Terminal: "0000000000A2"},
			{Time: time.Date(2026, 11, 22, 18, 40, 0, 0, beijing), Kind: TxComposite, AmountFen: -100000, Terminal: "0000000000A3"},
			{Time: time.Date(2026, 11, 22, 8, 1, 30, 0, beijing), Kind: TxLoad, AmountFen: 10000, Terminal: "000000000001"},
			{Time: time.Date(2026, 11, 20, 11, 59, 0, 0, beijing), Kind: "type_0x03", AmountFen: -2000, Terminal: "0000000000B7"},
			{Time: time.Date(2026, 11, 19, 7, 0, 0, 0, beijing), Kind: TxPurchase, AmountFen: -350, Terminal: "0000000000A2"},
		}}
}

// TestStatementThroughPTY: the balance slip with the card's newest
// transactions goes through go.bug.st/serial to the virtual printer, at 58
// and 80 mm, in GB18030 and GBK mode, and decodes to exactly the text
// written out here: newest first, each with time, kind, terminal and amount.
func TestStatementThroughPTY(t *testing.T) {
	head := func(cols int, pad func(l, v string) string) []string {
		rule := strings.Repeat("-", cols)
		return []string{"测试大学一卡通", "余额查询", rule,
			pad("终端号", "000000000001"), pad("时间", "2026-11-23 12:30:00"), pad("卡号", "3101********0001"),
			pad("持卡人", "张三"), pad("余额", "184.12"), pad("交易参考号", "000000000001-9"), rule, "最近交易"}
	}
	padTo := func(cols int) func(l, v string) string {
		return func(l, v string) string { return l + strings.Repeat(" ", cols-printer.Width(l)-printer.Width(v)) + v }
	}
	want58 := append(head(32, padTo(32)),
		"2026-11-23 12:05           -5.59",
		"消费                0000000000A2",
		"2026-11-22 18:40        -1000.00",
		"复合消费            0000000000A3",
		"2026-11-22 08:01          100.00",
		"充值                000000000001",
		"2026-11-20 11:59          -20.00",
		"其他                0000000000B7",
		"2026-11-19 07:00           -3.50",
		"消费                0000000000A2",
		strings.Repeat("-", 32), "谢谢惠顾")
	want80 := append(head(48, padTo(48)),
		"2026-11-23 12:05 消费     0000000000A2     -5.59",
		"2026-11-22 18:40 复合消费 0000000000A3  -1000.00",
		"2026-11-22 08:01 充值     000000000001    100.00",
		"2026-11-20 11:59 其他     0000000000B7    -20.00",
		"2026-11-19 07:00 消费     0000000000A2     -3.50",
		strings.Repeat("-", 48), "谢谢惠顾")

	link := filepath.Join(t.TempDir(), "printer")
	p := openSim(t, link, sim.Options{})
	line := &Line{Port: link, Mode: serial.Mode{BaudRate: 115200, DataBits: 8}}
	defer line.Close()
	nr, err := statementFacts().NewReceipt()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tc := range []struct {
		layout printer.Layout
		want   []string
	}{{printer.Layout58, want58}, {printer.Layout80, want80}} {
		for _, mode := range []printer.TextMode{printer.TextGB18030, printer.TextGBK} {
			r := renderer
			r.Options.Layout, r.Options.Mode = tc.layout, mode
			data, err := r.Render(offline.Receipt{Body: nr.Body})
			if err != nil {
				t.Fatal(err)
			}
			n++
			rc, lines := printOne(t, line, p, n, data)
			name := fmt.Sprintf("%d columns, %v", tc.layout.Cols, mode)
			if !slices.Equal(lines, tc.want) {
				t.Errorf("%s: printed\n%s\n%s", name, strings.Join(lines, "\n"), firstDiff(lines, tc.want))
			}
			if rc.ErrorCount != 0 || !slices.Equal(rc.QR, []string{"000000000001-9"}) {
				t.Errorf("%s: errors %q, QR %q", name, rc.Errors, rc.QR)
			}
		}
	}
}

// TestStatementOldFacts: a balance slip's facts stored before transactions
// were (no "transactions" key) render as they did, and only a balance slip
// takes transactions.
func TestStatementOldFacts(t *testing.T) {
	old := []byte(`{"kind":"balance","time":"2026-11-23T12:30:00+08:00","terminal_id":"000000000001","card":"3101000000800001","balance_fen":18412}`)
	pr, err := renderer.Receipt(offline.Receipt{Body: old})
	if err != nil {
		t.Fatal(err)
	}
	text := printer.Text(pr, 32)
	if pr.Statement != nil || slices.Contains(text, printer.LabelStatement) || text[len(text)-2] != strings.Repeat("-", 32) {
		t.Errorf("old facts:\n%s", strings.Join(text, "\n"))
	}
	f := statementFacts()
	b, _ := json.Marshal(f)
	if !strings.Contains(string(b), `"transactions":[{"time":"2026-11-23T12:05:09+08:00","kind":"purchase","amount_fen":-559,"terminal":"0000000000A2"}`) {
		t.Errorf("stored as %s", b)
	}
	f.Kind = KindTopUp
	if _, err := f.NewReceipt(); err == nil {
		t.Error("a top-up receipt with transactions: no error")
	}
}

// printOne writes data, the n-th receipt sent to p, through line and waits
// for p to print it: the receipt, and its lines without the feed before
// the cut.
func printOne(t *testing.T, line *Line, p *sim.Printer, n int, data []byte) (sim.Receipt, []string) {
	t.Helper()
	if err := line.Write(context.Background(), data); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := p.WaitReceipts(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	rc := got[n-1]
	lines := rc.Lines
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return rc, lines
}
