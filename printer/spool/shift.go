package spool

import (
	"fmt"
	"time"

	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer"
)

// Labels of a close-out slip (班结). A count goes in its label ("合计 5笔"),
// the sum on the right, so each line is one figure a cashier checks
// against the till.
const (
	LabelCashier    = "收银员"
	LabelShift      = "班次"
	LabelOpened     = "开班"
	LabelClosed     = "结班"
	LabelTotal      = "合计"
	LabelSplitCard  = "组合支付"
	LabelSplitDue   = "组合待收"
	LabelPINOver    = "密码消费"
	LabelVoids      = "冲正"
	LabelInDoubt    = "未决"
	LabelFailed     = "失败"
	LabelNoPeriod   = "无餐别"
	LabelNoClass    = "无身份"
	countSuffix     = "笔"
	shiftTimeLayout = "2006-01-02 15:04"
)

// CountLabel is a close-out label with its count: "合计 5笔".
func CountLabel(label string, n int) string {
	return fmt.Sprintf("%s %d%s", label, n, countSuffix)
}

// GroupLabel is the label of one meal period and class of a close-out:
// "lunch/staff", with 无餐别 and 无身份 for sales of none.
func GroupLabel(g offline.ShiftGroup) string {
	p, c := g.Period, g.Class
	if p == "" {
		p = LabelNoPeriod
	}
	if c == "" {
		c = LabelNoClass
	}
	return p + "/" + c
}

// ShiftLines are the lines of a close-out slip: who and when, each meal
// period and class with its count and sum, the total, split sales (the
// cards' part and what was collected otherwise), PIN overrides, voids, and
// the sales in doubt and failed, which are not in the total. nil for none.
func ShiftLines(s *offline.ShiftSummary) []printer.SummaryLine {
	if s == nil {
		return nil
	}
	at := func(t time.Time) string { return t.Local().Format(shiftTimeLayout) }
	out := []printer.SummaryLine{
		{Label: LabelCashier, Value: s.Cashier},
		{Label: LabelShift, Value: fmt.Sprint(s.Shift)},
		{Label: LabelOpened, Value: at(s.Opened)},
		{Label: LabelClosed, Value: at(s.Closed)},
	}
	for _, g := range s.Groups {
		out = append(out, printer.SummaryLine{Label: CountLabel(GroupLabel(g), g.Count), Value: money.Format(g.SumFen)})
	}
	out = append(out,
		printer.SummaryLine{Label: CountLabel(LabelTotal, s.Count), Value: money.Format(s.SumFen)},
		printer.SummaryLine{Label: CountLabel(LabelSplitCard, s.SplitCount), Value: money.Format(s.SplitCardFen)},
		printer.SummaryLine{Label: LabelSplitDue, Value: money.Format(s.SplitCollectFen)},
		printer.SummaryLine{Label: CountLabel(LabelPINOver, s.PINCount), Value: money.Format(s.PINFen)},
		printer.SummaryLine{Label: CountLabel(LabelVoids, s.VoidCount), Value: money.Format(s.VoidFen)},
		printer.SummaryLine{Label: CountLabel(LabelInDoubt, s.InDoubtCount), Value: money.Format(s.InDoubtFen)},
		printer.SummaryLine{Label: LabelFailed, Value: fmt.Sprintf("%d%s", s.FailedCount, countSuffix)},
	)
	return out
}
