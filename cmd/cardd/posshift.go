package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/daemon"
	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
)

const shiftUsage = `usage: cardd pos shift open --cashier ID   open the cashier's shift (one at a time)
       cardd pos shift close               close it: print its summary (班结) and send it to the host
       cardd pos shift                     show the open shift`

// cmdPOSShift opens, shows and closes the cashier's shift at a running POS
// daemon, through its local API. A refusal (a shift already open, none to
// close) exits 2 with the daemon's reason, as bad input does.
func cmdPOSShift(ctx context.Context, args []string, stdout io.Writer) error {
	sub, rest := "", args
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		sub, rest = args[0], args[1:]
	}
	var cashier string
	cfg, left, err := loadConfigArgs("pos shift "+sub, rest, func(fs *pflag.FlagSet) {
		if sub == "open" {
			fs.StringVar(&cashier, "cashier", "", "the cashier's id (printed on the close-out, sent to the host)")
		}
	})
	if err != nil {
		return err
	}
	if len(left) != 0 {
		return usageErr("%s", shiftUsage)
	}
	switch sub {
	case "", "open", "close":
	default:
		return usageErr("unknown pos shift command %q\n%s", sub, shiftUsage)
	}
	if sub == "open" {
		if err := offline.CheckCashier(cashier); err != nil {
			return usageErr("--cashier: %v", err)
		}
	}
	rt, err := findAPI(cfg)
	if err != nil {
		return err
	}
	switch sub {
	case "open":
		var out struct {
			Shift localapi.ShiftView `json:"shift"`
		}
		if err := shiftCall(ctx, rt, http.MethodPost, "/v1/shift", localapi.ShiftOpenRequest{Cashier: cashier}, &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "shift %d of cashier %s opened at %s\n", out.Shift.ID, out.Shift.Cashier, out.Shift.Opened.Local().Format(time.DateTime))
	case "close":
		var out struct {
			Summary localapi.ShiftSummaryView `json:"summary"`
		}
		if err := shiftCall(ctx, rt, http.MethodPost, "/v1/shift/close", nil, &out); err != nil {
			return err
		}
		printSummary(stdout, out.Summary)
	default:
		var out struct {
			Shift localapi.ShiftView `json:"shift"`
		}
		if err := shiftCall(ctx, rt, http.MethodGet, "/v1/shift", nil, &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "shift %d of cashier %s open since %s\n", out.Shift.ID, out.Shift.Cashier, out.Shift.Opened.Local().Format(time.DateTime))
	}
	return nil
}

// shiftCall is apiCall where a refusal of the daemon (4xx: a shift already
// open, none open, a bad cashier id) exits 2.
func shiftCall(ctx context.Context, rt daemon.RuntimeAPI, method, path string, body, out any) error {
	err := apiCall(ctx, rt, method, path, body, out)
	var refused *apiError
	if errors.As(err, &refused) && refused.status >= 400 && refused.status < 500 {
		return &exitError{code: 2, err: err}
	}
	return err
}

// printSummary prints a close-out as the slip has it, for the cashier's
// terminal.
func printSummary(w io.Writer, s localapi.ShiftSummaryView) {
	fmt.Fprintf(w, "shift %d of cashier %s closed: %s to %s\n", s.ID, s.Cashier,
		s.Opened.Local().Format(time.DateTime), s.Closed.Local().Format(time.DateTime))
	for _, g := range s.Groups {
		fmt.Fprintf(w, "  %-12s %-10s %4d sales %10s\n", orNone(g.Period), orNone(g.Class), g.Count, money.Format(g.SumFen))
	}
	fmt.Fprintf(w, "  total                   %4d sales %10s\n", s.Count, s.Sum)
	fmt.Fprintf(w, "  split: %d sales, cards paid %s, collected otherwise %s\n", s.SplitCount, money.Format(s.SplitCardFen), money.Format(s.SplitCollectFen))
	fmt.Fprintf(w, "  PIN overrides: %d, %s\n", s.PINCount, money.Format(s.PINFen))
	fmt.Fprintf(w, "  voids: %d, %s\n", s.VoidCount, money.Format(s.VoidFen))
	if s.InDoubtCount > 0 {
		fmt.Fprintf(w, "  IN DOUBT: %d sales, %s, not in the total: only the cards can settle them\n", s.InDoubtCount, money.Format(s.InDoubtFen))
	}
	if s.FailedCount > 0 {
		fmt.Fprintf(w, "  failed: %d sales (not paid)\n", s.FailedCount)
	}
	if s.Printed {
		fmt.Fprintln(w, "summary receipt queued for the printer")
	}
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
