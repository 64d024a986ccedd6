package daemon

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/internal/lockfile"
	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer"
	"github.com/cardd/cardd/printer/spool"
	"github.com/cardd/cardd/tap"
)

// PrintLock is the lock file beside the store held by the process that
// drives the printer: the daemon while it runs, else an operator
// subcommand. Two processes writing to one printer would interleave their
// receipts, and root is not stopped by the serial port's own exclusive
// mode (TIOCEXCL). held is the holder when another process has it.
func PrintLock(cfg *config.Config) (release func(), held *lockfile.HeldError, err error) {
	l, err := lockfile.Acquire(spool.LockPath(cfg.Store.Path))
	if errors.As(err, &held) {
		return nil, held, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("printer lock beside store.path: %w", err)
	}
	return func() { l.Release() }, nil, nil
}

// Renderer builds the receipt renderer of the configured printer.
func Renderer(cfg *config.Config) (spool.Renderer, error) {
	p := cfg.Printer
	opt := printer.Options{Layout: printer.Layout58}
	if p.Paper == 80 {
		opt.Layout = printer.Layout80
	}
	mode, _ := printer.ParseTextMode(p.Text) // checked by config.Validate, in loadConfig
	opt.Mode = mode
	opt.FourByte, _ = printer.ParseFourByte(p.FourByte) // checked by config.Validate
	if mode == printer.TextRaster || opt.FourByte == printer.FourByteImage {
		var err error
		if opt.Font, err = printer.LoadFont(p.FontFile); err != nil {
			return spool.Renderer{}, &ConfigError{Err: fmt.Errorf("printer.font_file %q: %w", p.FontFile, err)}
		}
	}
	switch p.Code {
	case "qr":
		opt.Symbol = printer.SymbolQR
	case "code128":
		opt.Symbol = printer.SymbolCode128
	default:
		opt.Symbol = printer.SymbolNone
	}
	return spool.Renderer{Options: opt, Merchant: cfg.Receipt.Merchant, Footer: cfg.Receipt.Footer}, nil
}

// NewPrintWorker is the print worker for the configured printer.
func NewPrintWorker(cfg *config.Config, store *offline.Store, line *spool.Line, log *slog.Logger) (*spool.Worker, error) {
	r, err := Renderer(cfg)
	if err != nil {
		return nil, err
	}
	return &spool.Worker{Queue: store, Printer: line, Render: r.Render, StatusChecks: cfg.Printer.StatusChecks, Logger: log}, nil
}

// loadReceipt is the Loader's receipt of a load done: the facts of the
// top-up, its reference the journal row id.
func loadReceipt(cfg *config.Config) func(cr *tap.CardRead, row offline.Row) (offline.NewReceipt, error) {
	return func(cr *tap.CardRead, row offline.Row) (offline.NewReceipt, error) {
		f := spool.Facts{Kind: spool.KindTopUp, Time: time.Now(), TerminalID: cfg.Terminal.ID, Card: row.Card,
			BalanceBeforeFen: row.BalanceFen, AmountFen: row.AmountFen, BalanceFen: row.BalanceFen + row.AmountFen,
			Reference: row.ID}
		if _, ok := tap.SubsidyOf(row); ok {
			f.Kind = spool.KindSubsidy // 补助到账, not 充值成功
		}
		cardFacts(&f, cr)
		return f.NewReceipt()
	}
}

// cardFacts adds what the read says of the card to a receipt's facts.
func cardFacts(f *spool.Facts, cr *tap.CardRead) {
	if cr == nil {
		return
	}
	if cr.Holder != nil {
		f.Holder = cr.Holder.Name
	}
	if cr.Profile != nil {
		f.Issuer = cmp.Or(cr.Profile.Title, cr.Profile.TitleEN)
	}
}

// purchaseReceipt makes the receipt of a purchase row that reached the
// card. The terminal id printed is cardd's; the PSAM's serial is in the
// journal row the reference names.
func purchaseReceipt(cfg *config.Config) func(cr *tap.CardRead, row offline.Row) (offline.NewReceipt, error) {
	return func(cr *tap.CardRead, row offline.Row) (offline.NewReceipt, error) {
		f := spool.Facts{Kind: spool.KindPurchase, Time: time.Now(), TerminalID: cfg.Terminal.ID, Card: row.Card,
			BalanceBeforeFen: row.BalanceFen, AmountFen: row.AmountFen, BalanceFen: row.BalanceFen - row.AmountFen,
			Reference: row.ID, Closing: hostapi.IsCloseID(row.CreditID)}
		if s, ok := tap.SplitOf(row); ok && s.CollectFen > 0 {
			// The card paid part: the slip shows the rest to collect.
			f.SaleFen, f.CollectFen = s.SaleFen, s.CollectFen
		}
		if d, ok := tap.DiscountOf(row); ok {
			f.ListFen, f.DiscountPercent = d.ListFen, d.Percent
		}
		cardFacts(&f, cr)
		return f.NewReceipt()
	}
}

// startPrinter starts the print worker of `cardd run`, in every mode with
// printer.enabled: it holds the printer lock, settles receipts a killed
// daemon left half-sent, prints the queue, and tells the heartbeat, the
// metrics and the API of the printer's state. The API takes receipt
// requests from then on. Close stops the worker and releases the lock.
func (d *Daemon) startPrinter() error {
	cfg, store, log := d.cfg, d.store, d.log
	d.printerState.Store("starting")
	release, held, err := PrintLock(cfg)
	if err != nil {
		return err
	}
	if held != nil {
		return fmt.Errorf("another cardd drives the printer of this store (%v): one daemon per terminal", held)
	}
	if n, err := store.RecoverSending(d.ctx); err != nil {
		release()
		return err
	} else if n > 0 {
		log.Warn("receipts were being sent when the last run ended; not sent again (they may be on paper): reprint if missing", "receipts", n)
	}
	line := spool.ConfiguredLine(cfg.Printer, log)
	w, err := NewPrintWorker(cfg, store, line, log)
	if err != nil {
		release()
		return err
	}
	w.OnState = func(s spool.State) {
		log.Info("printer state", "ready", s.Ready, "answering", s.Answering, "problem", s.Problem)
		d.printerChanged(s)
	}
	w.Start(d.ctx)
	d.onClose(func() {
		w.Stop()
		line.Close()
		release()
	})
	d.api.Receipts, d.api.ReceiptsWaiting, d.api.KickPrinter = store, store.ReceiptsWaiting, w.Kick
	d.api.BalanceReceipt = balanceReceipt(cfg)
	d.api.InvoiceReceipt = invoiceReceipt(cfg)
	return nil
}

// invoiceReceipt is the invoice slip of a top-up written here: the order,
// its amount and the QR code of its invoicing page.
func invoiceReceipt(cfg *config.Config) func(l localapi.LoadedHere, link string) (offline.NewReceipt, error) {
	return func(l localapi.LoadedHere, link string) (offline.NewReceipt, error) {
		f := spool.Facts{Kind: spool.KindInvoice, Time: l.Time, TerminalID: cfg.Terminal.ID, AmountFen: l.AmountFen,
			Reference: l.Order, Link: link}
		if l.Read != nil {
			f.Card = l.Read.Info.CardNumber
		}
		cardFacts(&f, l.Read)
		return f.NewReceipt()
	}
}

// printerChanged tells the heartbeat, the metrics and the API's status and
// event stream of the printer's new state.
func (d *Daemon) printerChanged(s spool.State) {
	state := "ready"
	if !s.Ready {
		state = "not ready: " + s.Problem
	}
	d.printerState.Store(state)
	d.metrics.PrinterReady(s.Ready)
	d.api.PrinterState(localapi.PrinterView{Enabled: true, Ready: s.Ready, Answering: s.Answering, Problem: s.Problem})
}

// balanceReceipt is the receipt of a balance query for the card read.
func balanceReceipt(cfg *config.Config) func(cr *tap.CardRead) (offline.NewReceipt, error) {
	return func(cr *tap.CardRead) (offline.NewReceipt, error) {
		f := spool.Facts{Kind: spool.KindBalance, Time: time.Now(), TerminalID: cfg.Terminal.ID,
			Card: cr.Info.CardNumber, BalanceFen: cr.Balance}
		cardFacts(&f, cr)
		f.Transactions = statement(cr.Log, cfg.Receipt.StatementLines)
		return f.NewReceipt()
	}
}

// statement is the card's newest transactions (log newest first), at most
// n of them, as the balance slip lists them: a cardholder who disputes a
// charge takes the slip to the office.
func statement(log []epurse.LogRecord, n int) []spool.StatementLine {
	var out []spool.StatementLine
	for _, l := range log[:min(n, len(log))] {
		out = append(out, spool.StatementLine{
			Time: l.Time, Kind: txKind(l.Type), AmountFen: tap.SignedAmount(l),
			Terminal: fmt.Sprintf("%X", l.TerminalID[:]),
		})
	}
	return out
}

// txKind names a log record's type the way a StatementLine does.
func txKind(t epurse.TxType) string {
	switch t {
	case epurse.TxEDLoad, epurse.TxEPLoad:
		return spool.TxLoad
	case epurse.TxEDPurchase, epurse.TxEPPurchase:
		return spool.TxPurchase
	case epurse.TxComposite:
		return spool.TxComposite
	}
	return t.String()
}
