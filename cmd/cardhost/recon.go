package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

// alarmList prints the alarms, open ones first.
type alarmList struct {
	noCheck
	all, asJSON bool
}

func (c *alarmList) flags(fs *pflag.FlagSet) {
	fs.BoolVar(&c.all, "all", false, "acknowledged alarms too, after the open ones")
	fs.BoolVar(&c.asJSON, "json", false, "print JSON instead of a table")
}

func (c *alarmList) run(ctx context.Context, e *env) error {
	list, err := e.st.Alarms(ctx, c.all)
	if err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(e.stdout, list)
	}
	tw, flush := newTable(e.stdout)
	fmt.Fprintln(tw, "ID\tTIME\tSTATE\tCARD\tBY\tDETAIL")
	for _, a := range list {
		state := "open"
		if a.Acked {
			state = fmt.Sprintf("acknowledged by %s at %s: %s", a.AckOperator, a.AckTime, a.AckNote)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Time, state, dash(redact.CardNumber(a.Card)), a.Actor, a.Detail)
	}
	return flush()
}

// alarmAck acknowledges one alarm with a note.
type alarmAck struct {
	ids            []string
	id             int64
	note, operator string
}

func (c *alarmAck) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.note, "note", "", "what was found and done (required)")
	fs.StringVar(&c.operator, "operator", "", "who acknowledges (default the user running cardhost)")
}

func (c *alarmAck) args(a []string) { c.ids = a }

func (c *alarmAck) check() error {
	if len(c.ids) != 1 {
		return usagef("want one alarm id (from 'cardhost alarms'), got %d", len(c.ids))
	}
	id, err := strconv.ParseInt(c.ids[0], 10, 64)
	if err != nil || id <= 0 {
		return usagef("alarm id %q: want a number from 'cardhost alarms'", c.ids[0])
	}
	c.id = id
	if strings.TrimSpace(c.note) == "" {
		return usagef("--note is required: say what was found and done")
	}
	if len(c.note) > host.MaxAckNoteLen {
		return usagef("--note: %d bytes, at most %d", len(c.note), host.MaxAckNoteLen)
	}
	return nil
}

func (c *alarmAck) run(ctx context.Context, e *env) error {
	who := operator()
	if c.operator != "" {
		who = "operator " + c.operator
	}
	err := e.st.AckAlarm(ctx, c.id, who, c.note, time.Now())
	switch {
	case errors.Is(err, host.ErrNotFound):
		return usagef("alarm %d: no such alarm", c.id)
	case errors.Is(err, host.ErrAcked):
		return usagef("alarm %d was acknowledged already ('cardhost alarms --all' shows by whom)", c.id)
	case err != nil:
		return err
	}
	fmt.Fprintf(e.stdout, "alarm %d acknowledged by %s\n", c.id, who)
	return nil
}

// reportDaily prints the daily settlement per terminal and merchant.
type reportDaily struct {
	date          string
	asCSV, asJSON bool
}

func (c *reportDaily) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.date, "date", "", "the day, YYYY-MM-DD, as the terminals' clocks count it (required)")
	fs.BoolVar(&c.asCSV, "csv", false, "print CSV (amounts in yuan) instead of a table")
	fs.BoolVar(&c.asJSON, "json", false, "print JSON (amounts in fen) instead of a table")
}

func (c *reportDaily) check() error {
	if err := required("date", c.date); err != nil {
		return err
	}
	if _, err := time.Parse(time.DateOnly, c.date); err != nil {
		return usagef("--date = %q: want a day like 2026-12-04", c.date)
	}
	if c.asCSV && c.asJSON {
		return usagef("--csv and --json: choose one")
	}
	return nil
}

// dailyColumns are the daily report's columns, as the CSV names them.
var dailyColumns = []string{"date", "terminal", "loads", "load_yuan", "ledger_load_yuan", "purchases", "purchase_yuan",
	"tac_verified_yuan", "tac_failed_yuan", "difference_yuan", "merchant"}

func dailyRecord(date string, d host.DailyTerminal) []string {
	return []string{date, d.Terminal, strconv.Itoa(d.Loads), money.Format(d.LoadFen), money.Format(d.LedgerLoadFen),
		strconv.Itoa(d.Purchases), money.Format(d.PurchaseFen), money.Format(d.VerifiedFen), money.Format(d.FailedTACFen), money.Format(d.DiffFen),
		d.Merchant}
}

// dailyRows are the report's rows in order: the terminals, the merchants'
// sums (a row with terminal MERCHANT; a terminal without a merchant is
// summed under none), the total.
func dailyRows(rep host.DailyReport) []host.DailyTerminal {
	rows := append(append([]host.DailyTerminal{}, rep.Terminals...), rep.Merchants...)
	for i := len(rep.Terminals); i < len(rows); i++ {
		if rows[i].Merchant == "" {
			rows[i].Merchant = "(none)"
		}
	}
	return append(rows, rep.Total)
}

func (c *reportDaily) run(ctx context.Context, e *env) error {
	rep, err := e.st.Daily(ctx, c.date)
	if err != nil {
		return err
	}
	switch {
	case c.asJSON:
		return printJSON(e.stdout, rep)
	case c.asCSV:
		w := csv.NewWriter(e.stdout)
		w.Write(dailyColumns)
		for _, d := range dailyRows(rep) {
			w.Write(dailyRecord(rep.Date, d))
		}
		w.Flush()
		return w.Error()
	}
	tw, flush := newTable(e.stdout)
	fmt.Fprintln(tw, "TERMINAL\tLOADS\tSUM\tLEDGER\tPURCHASES\tSUM\tTAC OK\tTAC FAILED\tDIFFERENCE\tMERCHANT")
	for _, d := range dailyRows(rep) {
		r := dailyRecord(rep.Date, d)
		fmt.Fprintln(tw, strings.Join(r[1:], "\t"))
	}
	if err := flush(); err != nil {
		return err
	}
	verdict := "settled: no difference"
	if rep.Total.DiffFen != 0 {
		verdict = "NOT settled: a difference of " + money.Format(rep.Total.DiffFen) + " ('cardhost alarms' says where)"
	}
	by := "per terminal and merchant"
	if len(rep.Merchants) == 0 {
		by = "per terminal: no terminal has a merchant ('cardhost terminal merchant')"
	}
	_, err = fmt.Fprintf(e.stdout, "%s: %s (%s)\n", rep.Date, verdict, by)
	return err
}
