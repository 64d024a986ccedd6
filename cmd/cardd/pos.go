package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/daemon"
	"github.com/cardd/cardd/localapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/tap"
)

// findAPI returns the local API of the daemon of this configuration: the
// runtime file it wrote, else api.listen with api.token_file.
func findAPI(cfg *config.Config) (daemon.RuntimeAPI, error) {
	if b, err := os.ReadFile(daemon.RuntimeAPIPath(cfg)); err == nil {
		var rt daemon.RuntimeAPI
		if err := json.Unmarshal(b, &rt); err == nil && rt.URL != "" {
			return rt, nil
		}
	}
	if cfg.API.TokenFile == "" || strings.HasSuffix(cfg.API.Listen, ":0") {
		return daemon.RuntimeAPI{}, fmt.Errorf("no running cardd found (%s is missing) and api.token_file with a fixed api.listen is not configured", daemon.RuntimeAPIPath(cfg))
	}
	tok, err := config.ReadSecretFile(cfg.API.TokenFile)
	if err != nil {
		return daemon.RuntimeAPI{}, &exitError{code: 2, err: fmt.Errorf("api.token_file: %w", err)}
	}
	return daemon.RuntimeAPI{URL: "http://" + daemon.DialAddr(cfg.API.Listen), Token: string(tok)}, nil
}

const posUsage = `usage: cardd pos charge AMOUNT [--pin-stdin] [--wait D]   arm a sale of AMOUNT yuan for the next tap
       cardd pos charge AMOUNT --split [--cap C] ...       the card pays what it holds (at most C), the rest is to collect
       cardd pos cancel                                    disarm the sale
       cardd pos void [SALE] [--amount A] [--cashier ID]   void the last sale (or journal row SALE) within pos.void_window: its refund goes to the card
       cardd pos shift open --cashier ID | close           open the cashier's shift, close it with its summary (班结)`

// cmdPOS arms and disarms sales at a running POS daemon, through its local
// API, as a POS app does.
func cmdPOS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usageErr("%s", posUsage)
	}
	sub, rest := args[0], args[1:]
	if sub == "shift" {
		return cmdPOSShift(ctx, rest, stdout)
	}
	var o posOptions
	cfg, posArgs, err := loadConfigArgs("pos "+sub, rest, o.flags(sub))
	if err != nil {
		return err
	}
	if sub == "void" {
		return cmdPOSVoid(ctx, cfg, posArgs, o, stdout)
	}
	rt, err := findAPI(cfg)
	if err != nil {
		return err
	}
	switch sub {
	case "charge":
		if len(posArgs) != 1 {
			return usageErr("%s", posUsage)
		}
		fen, err := money.Parse(posArgs[0])
		if err != nil || fen <= 0 {
			return usageErr("amount %q: want yuan above 0 with at most two decimals, like 12.50", posArgs[0])
		}
		req, err := splitRequest(fen, o.split, o.capArg)
		if err != nil {
			return err
		}
		if o.pinStdin {
			line, err := bufio.NewReader(os.Stdin).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("reading the PIN: %w", err)
			}
			req.PIN = strings.TrimSpace(line)
		}
		// Follow the events first, so the tap cannot pass before we look.
		var events <-chan localapi.Event
		if o.wait > 0 {
			wctx, cancel := context.WithTimeout(ctx, o.wait)
			defer cancel()
			if events, err = streamEvents(wctx, rt); err != nil {
				return err
			}
		}
		var armed struct {
			ID struct {
				ID string `json:"id"`
			} `json:"sale"`
		}
		if err := armSale(ctx, rt, req, &armed); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "sale %s of %s armed: tap the card\n", armed.ID.ID, money.Format(fen))
		if o.wait == 0 {
			return nil
		}
		for e := range events {
			if e.Type != localapi.EventCardTap || e.Tap == nil {
				continue
			}
			if !ofSale(stdout, e.Tap, armed.ID.ID) {
				continue
			}
			p := e.Tap.Purchase
			if printPaid(stdout, e.Tap) {
				if e.Tap.Outcome == string(tap.OutcomeMAC2Alarm) {
					// Paid all the same: charging again would take the money twice.
					fmt.Fprintf(stdout, "ALARM: %s\n", e.Tap.Error)
				}
				return nil
			}
			if e.Tap.Outcome == string(tap.OutcomeSaleInDoubt) {
				// The card may have debited: a second payment could be taken.
				fmt.Fprintf(stdout, "IN DOUBT: the card may have paid %s; take no other payment, tap the same card again to settle it (%s)\n", p.Amount, e.Tap.Error)
				return &exitError{code: 1, err: fmt.Errorf("sale %s in doubt: tap the same card again", armed.ID.ID)}
			}
			fmt.Fprintf(stdout, "not paid (%s): %s\n", e.Tap.Outcome, e.Tap.Error)
			return &exitError{code: 1, err: fmt.Errorf("sale %s not paid: %s", armed.ID.ID, e.Tap.Outcome)}
		}
		return fmt.Errorf("no tap paid sale %s within %v; it stays armed (cardd pos cancel to drop it)", armed.ID.ID, o.wait)
	case "cancel":
		if len(posArgs) != 0 {
			return usageErr("%s", posUsage)
		}
		if err := apiCall(ctx, rt, http.MethodDelete, "/v1/purchase/arm", nil, nil); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "sale cancelled")
		return nil
	}
	return usageErr("unknown pos command %q\n%s", sub, posUsage)
}

// posOptions are the flags of `cardd pos`'s subcommands.
type posOptions struct {
	pinStdin, split             bool
	wait                        time.Duration
	capArg, voidAmount, cashier string
}

// flags registers the flags of subcommand sub.
func (o *posOptions) flags(sub string) func(fs *pflag.FlagSet) {
	return func(fs *pflag.FlagSet) {
		switch sub {
		case "charge":
			fs.BoolVar(&o.pinStdin, "pin-stdin", false, "read the cardholder's PIN from standard input (needed above the daily limit)")
			fs.DurationVar(&o.wait, "wait", 0, "wait this long for the tap that pays, and print its outcome (0: return once armed)")
			fs.BoolVar(&o.split, "split", false, "split payment: the card pays what it holds, the rest is collected by other means")
			fs.StringVar(&o.capArg, "cap", "", "with --split, the most the card may pay, in yuan")
		case "void":
			fs.StringVar(&o.voidAmount, "amount", "", "refund this much of the sale, in yuan (default: the whole sale)")
			fs.StringVar(&o.cashier, "cashier", "", "who voids, for the journal and the shift")
		}
	}
}

// apiTimeout bounds one call to the local API: a daemon that accepts and
// never answers must not hang the cashier's command.
var apiTimeout = 15 * time.Second

// apiCall sends one request to the local API and decodes its answer into
// out (when not nil); a 4xx or 5xx is an error with the API's reason.
func apiCall(ctx context.Context, rt daemon.RuntimeAPI, method, path string, body, out any) error {
	return apiCallWithin(ctx, apiTimeout, rt, method, path, body, out)
}

// apiCallWithin is apiCall bounded by timeout.
func apiCallWithin(ctx context.Context, timeout time.Duration, rt daemon.RuntimeAPI, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, rt.URL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+rt.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cardd's local API at %s: %w", rt.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		return &apiError{status: resp.StatusCode, err: fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// streamEvents follows GET /v1/events until ctx ends.
func streamEvents(ctx context.Context, rt daemon.RuntimeAPI) (<-chan localapi.Event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rt.URL+"/v1/events", nil)
	if err != nil {
		return nil, err
	}
	// The token gets a stream kept for the POS app: anonymous clients
	// cannot take them all.
	req.Header.Set("Authorization", "Bearer "+rt.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cardd's event stream at %s: %w", rt.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("cardd's event stream: %s", resp.Status)
	}
	ch := make(chan localapi.Event)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var e localapi.Event
			if json.Unmarshal([]byte(data), &e) != nil {
				continue
			}
			select {
			case ch <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// armSale arms req at the daemon. A sale the daemon refuses (400: not a
// price of the meal period, over the maximum; 409: outside every meal
// period, a sale in doubt) exits 2, as the cashier's bad input does.
func armSale(ctx context.Context, rt daemon.RuntimeAPI, req localapi.ArmRequest, out any) error {
	err := apiCall(ctx, rt, http.MethodPost, "/v1/purchase/arm", req, out)
	var refused *apiError
	if errors.As(err, &refused) && (refused.status == http.StatusBadRequest || refused.status == http.StatusConflict) {
		return &exitError{code: 2, err: err}
	}
	return err
}

// apiError is a 4xx or 5xx answer of the local API, with its reason.
type apiError struct {
	status int
	err    error
}

func (e *apiError) Error() string { return e.err.Error() }
