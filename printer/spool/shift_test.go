package spool

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer"
	"github.com/cardd/cardd/printer/sim"
)

// A close-out slip through a virtual printer in GB18030: every meal period
// and class with its count and sum, the total, split parts, PIN overrides,
// voids and the sales in doubt, each a label/value line the printer shows
// as laid out.
func TestShiftSlipThroughPTY(t *testing.T) {
	sum := &offline.ShiftSummary{Shift: 3, Cashier: "C007",
		Opened: time.Date(2026, 12, 4, 10, 30, 0, 0, time.Local), Closed: time.Date(2026, 12, 4, 19, 0, 0, 0, time.Local),
		ShiftTotals: hostapi.ShiftTotals{Count: 4, SumFen: 5140,
			Groups: []offline.ShiftGroup{
				{Period: "dinner", Class: "", Count: 1, SumFen: 1840},
				{Period: "lunch", Class: "staff", Count: 1, SumFen: 1200},
				{Period: "lunch", Class: "student", Count: 2, SumFen: 2100},
			},
			SplitCount: 1, SplitCardFen: 1840, SplitCollectFen: 1160, PINCount: 1, PINFen: 1200,
			VoidCount: 1, VoidFen: 650, InDoubtCount: 2, InDoubtFen: 900, FailedCount: 1}}
	if _, err := (Facts{Kind: KindShift}).NewReceipt(); err == nil {
		t.Error("a shift slip without its summary was queued")
	}
	if _, err := (Facts{Kind: KindPurchase, Shift: sum}).NewReceipt(); err == nil {
		t.Error("a purchase slip with a shift summary was queued")
	}
	nr, err := Facts{Kind: KindShift, Time: sum.Closed, TerminalID: "000000000001", Shift: sum}.NewReceipt()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "printer")
	p := openSim(t, link, sim.Options{})
	line := &Line{Port: link, Mode: serial.Mode{BaudRate: 115200, DataBits: 8}}
	t.Cleanup(func() { line.Close() })
	data, err := renderer.Render(offline.Receipt{Body: nr.Body})
	if err != nil {
		t.Fatal(err)
	}
	rc, lines := printOne(t, line, p, 1, data)
	if rc.ErrorCount != 0 {
		t.Errorf("printer errors %q", rc.Errors)
	}
	pad := func(label, value string) string {
		return label + string(slices.Repeat([]byte(" "), printer.Layout58.Cols-printer.Width(label)-printer.Width(value))) + value
	}
	for _, want := range []string{
		"班结",
		pad("收银员", "C007"),
		pad("班次", "3"),
		pad("开班", "2026-12-04 10:30"),
		pad("结班", "2026-12-04 19:00"),
		pad("dinner/无身份 1笔", "18.40"),
		pad("lunch/staff 1笔", "12.00"),
		pad("lunch/student 2笔", "21.00"),
		pad("合计 4笔", "51.40"),
		pad("组合支付 1笔", "18.40"),
		pad("组合待收", "11.60"),
		pad("密码消费 1笔", "12.00"),
		pad("冲正 1笔", "6.50"),
		pad("未决 2笔", "9.00"),
		pad("失败", "1笔"),
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("the slip lacks %q:\n%q", want, lines)
		}
	}
}
