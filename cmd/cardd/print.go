package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/daemon"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/printer/spool"
)

// cmdPrintTest queues a test page and sees it printed.
func cmdPrintTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig("print-test", args, nil)
	if err != nil {
		return err
	}
	f := spool.Facts{Kind: spool.KindTest, Time: time.Now(), TerminalID: cfg.Terminal.ID}
	nr, err := f.NewReceipt()
	if err != nil {
		return err
	}
	return queueAndPrint(ctx, cfg, stdout, stderr, func(store *offline.Store) (int64, error) {
		return store.QueueReceipt(ctx, nr)
	})
}

// cmdReceipts is `cardd receipts reprint-last`.
func cmdReceipts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "reprint-last" {
		return usageErr("receipts: want the subcommand reprint-last")
	}
	cfg, err := loadConfig("receipts reprint-last", args[1:], nil)
	if err != nil {
		return err
	}
	return queueAndPrint(ctx, cfg, stdout, stderr, func(store *offline.Store) (int64, error) {
		last, err := store.LastReceipt(ctx)
		if errors.Is(err, offline.ErrNotFound) {
			return 0, errors.New("no receipt to reprint")
		}
		if err != nil {
			return 0, err
		}
		return store.Reprint(ctx, last.ID)
	})
}

// queueAndPrint queues a receipt with add and waits until it is printed:
// by the running daemon when it holds the printer, else by this process.
func queueAndPrint(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer, add func(*offline.Store) (int64, error)) error {
	if !cfg.Printer.Enabled {
		return &exitError{code: 2, err: errors.New("printer.enabled is false: no printer is configured (set printer.enabled and printer.port)")}
	}
	if _, err := daemon.Renderer(cfg); err != nil {
		return err
	}
	store, err := offline.Open(cfg.Store.Path, cfg.Terminal.ID)
	if err != nil {
		return err
	}
	defer store.Close()
	id, err := add(store)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "receipt %d queued\n", id)
	log := newLogger(cfg, stderr)
	release, held, err := daemon.PrintLock(cfg)
	if err != nil {
		return err
	}
	if held == nil {
		// No daemon drives the printer: print the queue from here.
		defer release()
		line := spool.ConfiguredLine(cfg.Printer, log)
		defer line.Close()
		w, err := daemon.NewPrintWorker(cfg, store, line, log)
		if err != nil {
			return err
		}
		w.Start(ctx)
		defer w.Stop()
	} else {
		fmt.Fprintln(stdout, "the running cardd prints it")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		r, err := store.GetReceipt(ctx, id)
		if err != nil {
			return err
		}
		if r.State == offline.ReceiptPrinted {
			fmt.Fprintf(stdout, "receipt %d printed\n", id)
			return nil
		}
		select {
		case <-ctx.Done():
			why := r.LastError
			if why == "" {
				why = "the printer did not take it in time"
			}
			return fmt.Errorf("receipt %d not printed within 30 s (%s); it stays queued and prints when the printer can", id, why)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
