package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/daemon"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/reader"
	"github.com/cardd/cardd/redact"
	"github.com/cardd/cardd/tap"
)

// scanOutput is the --json form of a scan; field names are part of cardd's
// interface for scripts, keep them stable.
type scanOutput struct {
	Reader string `json:"reader"`
	Card   string `json:"card"` // masked unless --full-number
	// PrintedNumber is the number as the card face shows it, when that
	// differs from Card (Shanghai's U number, Shenzhen Tong's check digit).
	PrintedNumber string `json:"printed_number,omitempty"`
	// Family is the card's profile; Issuer and IssuerEN its names.
	Family    string `json:"family"`
	Issuer    string `json:"issuer,omitempty"`
	IssuerEN  string `json:"issuer_en"`
	Numbering string `json:"numbering"`
	// CityCode is EF 0x15 bytes 2-3 in hex, the issuing city of a city card.
	CityCode   string `json:"city_code"`
	Holder     string `json:"holder,omitempty"`
	ValidFrom  string `json:"valid_from"`
	ValidTo    string `json:"valid_to"`
	Purse      string `json:"purse"`
	Balance    string `json:"balance"`
	BalanceFen int64  `json:"balance_fen"`
	// PurseBalanceFen is the purse alone; SecondPurseFen the second purse
	// of a card that has one. BalanceFen is what the card would spend.
	PurseBalanceFen int64    `json:"purse_balance_fen"`
	SecondPurseFen  *int64   `json:"second_purse_fen,omitempty"`
	Notes           []string `json:"notes,omitempty"`
	// Error is set, and the balance fields are zero, when the card was
	// named but refused GET BALANCE; cardd scan then exits non-zero.
	Error        string          `json:"error,omitempty"`
	Transactions []scanTxnOutput `json:"transactions"`
	APDUs        int             `json:"apdus"`
	BalanceAPDUs int             `json:"balance_apdus"`
	BalanceMS    float64         `json:"balance_ms"`
	TotalMS      float64         `json:"total_ms"`
}

type scanTxnOutput struct {
	Time      string `json:"time"`
	Type      string `json:"type"`
	Amount    string `json:"amount"` // signed: loads positive, purchases negative
	AmountFen int64  `json:"amount_fen"`
	Terminal  string `json:"terminal"`
	Counter   uint16 `json:"counter"`
}

func cmdScan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var asJSON, fullNumber bool
	var wait time.Duration
	cfg, err := loadConfig("scan", args, func(fs *pflag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
		fs.BoolVar(&fullNumber, "full-number", false, "print the card number whole (it is masked, first 4 and last 4, by default)")
		fs.DurationVar(&wait, "wait", 0, "give up when no card is tapped within this time (0 waits for ever)")
	})
	if err != nil {
		return err
	}
	prompt := stderr
	if asJSON {
		prompt = nil
	}
	got, err := oneTap(ctx, interactiveRunner(cfg, stderr), wait, prompt)
	if err != nil {
		return err
	}
	var partial *tap.BalanceError
	if got.Err != nil && asJSON && errors.As(got.Err, &partial) {
		// Named but no balance: print what names the card, then fail.
		res := *got
		res.Read = partial.Read
		out := toScanOutput(res, fullNumber)
		out.Error = fmt.Sprintf("%s: %v", got.Outcome(), got.Err)
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	if got.Err != nil {
		return fmt.Errorf("%s: %s: %w", got.Reader, got.Outcome(), got.Err)
	}
	out := toScanOutput(*got, fullNumber)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(out)
	}
	return writeScanTable(stdout, out)
}

// interactiveRunner is the runner of a command a person runs at a reader
// for one tap: the command prints its own result, and only warnings (pcscd
// trouble) reach the terminal.
func interactiveRunner(cfg *config.Config, stderr io.Writer) *tap.Runner {
	log := newLogger(cfg, stderr)
	if cfg.Log.SlogLevel() < slog.LevelWarn {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	r := daemon.NewRunner(cfg, log)
	r.Read.History = true // scan and dump show the holder and the log
	r.Logger = slog.New(slog.DiscardHandler)
	r.Monitor = &reader.Monitor{Logger: log}
	return r
}

// oneTap runs r until the first tap and returns it; wait > 0 bounds the
// wait for a card. It asks for the card on prompt, unless nil.
func oneTap(ctx context.Context, r *tap.Runner, wait time.Duration, prompt io.Writer) (*tap.Result, error) {
	if wait < 0 {
		return nil, usageErr("--wait = %q: must not be negative", wait)
	}
	if prompt != nil {
		fmt.Fprintln(prompt, "Tap a card…")
	}
	if wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got *tap.Result
	r.OnTap = func(res tap.Result) {
		got = &res
		cancel()
	}
	if err := r.Run(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	if got == nil {
		if ctx.Err() != nil && wait > 0 {
			return nil, fmt.Errorf("no card tapped within %v", wait)
		}
		return nil, errors.New("interrupted before a card was tapped")
	}
	return got, nil
}

func toScanOutput(res tap.Result, fullNumber bool) scanOutput {
	cr := res.Read
	mask := redact.CardNumber
	if fullNumber {
		mask = func(n string) string { return n }
	}
	out := scanOutput{
		Reader:          res.Reader,
		Card:            mask(cr.Info.CardNumber),
		Family:          cr.Profile.Name,
		Issuer:          cr.Profile.Title,
		IssuerEN:        cr.Profile.TitleEN,
		Numbering:       string(cmp.Or(cr.Info.Numbering, epurse.NumberBCD)),
		CityCode:        fmt.Sprintf("%04X", cr.Info.CityCode()),
		PurseBalanceFen: cr.PurseBalance,
		SecondPurseFen:  cr.SecondPurse,
		Notes:           cr.Notes,
		ValidFrom:       cr.Info.StartDate.String(),
		ValidTo:         cr.Info.ExpiryDate.String(),
		Purse:           cr.Purse.String(),
		Balance:         money.Format(cr.Balance),
		BalanceFen:      cr.Balance,
		Transactions:    []scanTxnOutput{},
		APDUs:           cr.APDUs,
		BalanceAPDUs:    cr.BalanceAPDUs,
		BalanceMS:       float64(res.ToBalance.Microseconds()) / 1000,
		TotalMS:         float64(res.ToDone.Microseconds()) / 1000,
	}
	if p := epurse.PrintedNumber(cr.Info.CardNumber, cr.Info.Numbering); p != cr.Info.CardNumber {
		out.PrintedNumber = mask(p)
	}
	if cr.Holder != nil {
		out.Holder = cr.Holder.Name
	}
	for _, l := range cr.Log {
		amt := tap.SignedAmount(l)
		out.Transactions = append(out.Transactions, scanTxnOutput{
			Time:      l.Time.Format("2006-01-02 15:04:05"),
			Type:      l.Type.String(),
			Amount:    money.Format(amt),
			AmountFen: amt,
			Terminal:  fmt.Sprintf("%X", l.TerminalID[:]),
			Counter:   l.Counter,
		})
	}
	return out
}

func writeScanTable(w io.Writer, o scanOutput) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	card := o.Card
	if o.PrintedNumber != "" {
		card += " (printed " + o.PrintedNumber + ")"
	}
	fmt.Fprintf(tw, "Card\t%s\n", card)
	fmt.Fprintf(tw, "Issuer\t%s\n", strings.TrimSpace(o.Issuer+" "+o.IssuerEN))
	if o.Holder != "" {
		fmt.Fprintf(tw, "Holder\t%s\n", onTerminal(o.Holder))
	}
	fmt.Fprintf(tw, "Valid\t%s to %s\n", o.ValidFrom, o.ValidTo)
	fmt.Fprintf(tw, "Balance\t%s (%s)\n", o.Balance, o.Purse)
	if o.SecondPurseFen != nil {
		fmt.Fprintf(tw, "Purses\t%s, second purse %s (the balance is the purse less the second purse)\n",
			money.Format(o.PurseBalanceFen), money.Format(*o.SecondPurseFen))
	}
	for _, n := range o.Notes {
		fmt.Fprintf(tw, "Not read\t%s\n", onTerminal(n))
	}
	fmt.Fprintf(tw, "Reader\t%s\n", o.Reader)
	fmt.Fprintf(tw, "Read\t%d APDUs (balance after %d), %.1f ms\n", o.APDUs, o.BalanceAPDUs, o.TotalMS)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(o.Transactions) == 0 {
		_, err := fmt.Fprintln(w, "No transactions on the card.")
		return err
	}
	fmt.Fprintf(w, "Last %d transactions, newest first:\n", len(o.Transactions))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "#\tTime\tType\tAmount\tTerminal\t")
	for _, t := range o.Transactions {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t\n", t.Counter, t.Time, t.Type, t.Amount, t.Terminal)
	}
	return tw.Flush()
}

// onTerminal shows the control and format characters of text from the card
// as '?': written raw, a cardholder name holding ESC [ 2 A would move the
// operator's cursor and overwrite the balance line with text the card chose.
func onTerminal(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.In(r, unicode.Cc, unicode.Cf) {
			return '?'
		}
		return r
	}, s)
}
