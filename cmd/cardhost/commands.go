package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/apdu/psam"
	psamsim "github.com/cardd/cardd/apdu/psam/sim"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

func cmdInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newFlags("init", stdout)
	if err := parse(fs, args, dir); err != nil {
		return err
	}
	if err := host.InitDir(*dir); err != nil {
		if errors.Is(err, host.ErrExists) {
			return usagef("--dir = %q: %v", *dir, err)
		}
		return err
	}
	fmt.Fprintf(stdout, "initialized %s: %s and %s (issuer master keys, mode 0600: keep them secret and backed up)\n",
		*dir, filepath.Join(*dir, host.DBFile), filepath.Join(*dir, host.MastersFile))
	return nil
}

func cmdTerminalAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newFlags("terminal add", stdout)
	id := fs.String("id", "", "terminal id, 12 hex digits, as in the terminal's terminal.id (required)")
	out := fs.String("secret-out", "", "file to write the terminal's secret to, mode 0600, for its host.secret_file (required; refused if it exists)")
	if err := parse(fs, args, dir); err != nil {
		return err
	}
	if err := required("id", *id); err != nil {
		return err
	}
	if err := required("secret-out", *out); err != nil {
		return err
	}
	canon, err := host.CanonicalTerminalID(*id)
	if err != nil {
		return usagef("--id = %q: want 12 hex digits, like 000000000001", *id)
	}
	if _, err := os.Lstat(*out); err == nil {
		return usagef("--secret-out = %q: the file exists; refusing to overwrite it", *out)
	}
	st, err := openStore(*dir)
	if err != nil {
		return err
	}
	defer st.Close()
	secret, err := host.NewTerminalSecret()
	if err != nil {
		return err
	}
	// The file first: a terminal registered with a secret nobody holds
	// would block the corrected command that follows.
	if err := writeSecretFile(*out, secret); err != nil {
		return fmt.Errorf("--secret-out = %q: %w", *out, err)
	}
	if err := st.AddTerminal(ctx, canon, secret, time.Now()); err != nil {
		os.Remove(*out)
		if errors.Is(err, host.ErrExists) {
			return usagef("--id = %q: terminal %s is registered already", *id, canon)
		}
		return err
	}
	fmt.Fprintf(stdout, "terminal %s registered; its secret is in %s (mode 0600): copy it to the terminal and set host.secret_file to it\n", canon, *out)
	return nil
}

// writeSecretFile writes the secret as one line to a new file, mode 0600.
func writeSecretFile(path, secret string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(secret + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

func cmdTerminalList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newFlags("terminal list", stdout)
	if err := parse(fs, args, dir); err != nil {
		return err
	}
	st, err := openStore(*dir)
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := st.Terminals(ctx)
	if err != nil {
		return err
	}
	tw, flush := newTable(stdout)
	fmt.Fprintln(tw, "ID\tREGISTERED\tLAST SEEN\tVERSION\tQUEUE\tREADERS")
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", t.ID, t.Created, dash(t.LastSeen), dash(t.Version), t.QueueDepth, dash(strings.Join(t.Readers, ", ")))
	}
	return flush()
}

// newTable returns a tabwriter for an aligned table and the function that
// writes it out to w, without the padding that empty last cells leave.
func newTable(w io.Writer) (*tabwriter.Writer, func() error) {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	return tw, func() error {
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, line := range strings.SplitAfter(buf.String(), "\n") {
			if line == "" {
				continue
			}
			if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
				return err
			}
		}
		return nil
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cmdCardIssue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newFlags("card issue", stdout)
	number := fs.String("number", "", "card number as printed on the card: 8 to 16 digits for a campus card, 19 for a T-Union card (required)")
	profile := fs.String("profile", "campus", "numbering and layout of the card: campus (8 to 16 digits in BCD, our own) or tunion (19 digits, T-Union AID, a second purse)")
	holder := fs.String("holder", "", "cardholder name (stored as GBK on the card); empty for an anonymous card")
	balance := fs.String("balance", "0.00", "EP balance at issue, in yuan, like 100.00")
	start := fs.String("start", "", "first valid day, YYYY-MM-DD (default a year ago, so a --history lies within it)")
	expiry := fs.String("expiry", "", "last valid day, YYYY-MM-DD (default start + 4 years)")
	out := fs.String("out", "", "card file to write, mode 0600, for 'cardsim card --file' (required; refused if it exists)")
	history := fs.Int("history", 0, "give the card this many past transactions (0-50), made with its own commands; not credits of this host")
	purchaseDiv := fs.String("purchase-diversification", "one", "the purchase key: one level (cardd's PSAMs), or two by issuer (T-Union) or city code (CJ/T 166), for PSAMs keyed so")
	purchaseKey := fs.Int("purchase-key-index", 1, "the purchase key index the card answers to (1-255), as the PSAM's EF 0x17 says")
	securityCode := fs.Bool("security-code", false, "give the card a security code (80 CA 00 00 09) for PSAMs that check one")
	if err := parse(fs, args, dir); err != nil {
		return err
	}
	div, err := psam.ParseDiversification(*purchaseDiv)
	if err != nil {
		return usagef("--purchase-diversification = %q: want one, issuer or city", *purchaseDiv)
	}
	if *purchaseKey < 1 || *purchaseKey > 255 {
		return usagef("--purchase-key-index = %d: want 1 to 255", *purchaseKey)
	}
	purchase := psamsim.CardPurchase{Diversification: div, KeyIndex: byte(*purchaseKey), SecurityCode: *securityCode}
	if err := required("number", *number); err != nil {
		return err
	}
	if *history < 0 || *history > 50 {
		return usagef("--history = %d: want 0 to 50", *history)
	}
	if err := required("out", *out); err != nil {
		return err
	}
	prof, err := issuableProfile(*profile)
	if err != nil {
		return usagef("--profile = %q: %v", *profile, err)
	}
	var bad *hostapi.CardIDError
	if errors.As(host.CheckCardNumber(*number), &bad) {
		return usagef("--number = %+q: %s", *number, bad.Reason)
	}
	fen, err := money.Parse(*balance)
	if err != nil || fen < 0 || fen > epurse.MaxAmount {
		return usagef("--balance = %q: want an amount like 100.00, 0.00 to %s", *balance, money.Format(epurse.MaxAmount))
	}
	startDate := epurse.DateOf(time.Now().AddDate(-1, 0, 0))
	if *start != "" {
		if startDate, err = epurse.ParseDateString(*start); err != nil || startDate.IsZero() {
			return usagef("--start = %q: want a date like 2026-09-01", *start)
		}
	}
	expiryDate := epurse.DateOf(time.Date(startDate.Year+4, startDate.Month, startDate.Day, 0, 0, 0, 0, time.UTC))
	if *expiry != "" {
		if expiryDate, err = epurse.ParseDateString(*expiry); err != nil || expiryDate.IsZero() {
			return usagef("--expiry = %q: want a date like 2030-08-31", *expiry)
		}
	}
	if expiryDate.Before(startDate) {
		return usagef("--expiry = %q: before the start date %s", expiryDate, startDate)
	}
	if _, err := os.Lstat(*out); err == nil {
		return usagef("--out = %q: the file exists; refusing to overwrite it", *out)
	}
	st, err := openStore(*dir)
	if err != nil {
		return err
	}
	defer st.Close()
	keys, err := openKeys(*dir)
	if err != nil {
		return err
	}
	req := host.IssueRequest{Number: *number, Profile: prof, Holder: *holder, BalanceFen: fen, Start: startDate, Expiry: expiryDate}
	f, err := st.IssueCard(ctx, keys, req, *out, operator(), time.Now())
	switch {
	case errors.Is(err, host.ErrExists):
		return usagef("--number = %q: %v", *number, err)
	case errors.Is(err, epurse.ErrBadArgument):
		return usagef("%v", err) // the holder name, mostly (GBK, 20 bytes), or a number the profile cannot carry
	case err != nil:
		return err
	}
	if *history > 0 {
		card := epursesim.NewSimCard(f, *out)
		if err := keys.SeedHistory(card, [6]byte{0, 0, 0, 0, 0x10, 0x01}, *history, time.Now()); err != nil {
			return fmt.Errorf("card history: %w", err)
		}
		f = card.File()
	}
	if purchase != (psamsim.CardPurchase{KeyIndex: 1}) {
		// After the history, which was paid with the one-level key.
		keys.PersonalizePurchase(f, purchase)
		if err := f.Save(*out); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "issued card %s: holder %q, EP balance %s, valid %s to %s, %d past transactions, written to %s (mode 0600)\n",
		redact.CardNumber(f.Info.CardNumber), *holder, money.Format(f.EPBalance), startDate, expiryDate, len(f.Log), *out)
	return nil
}

// issuableProfile is the card profile named by a --profile flag.
func issuableProfile(name string) (*epurse.Profile, error) {
	var names []string
	for _, p := range epursesim.IssuableProfiles {
		if p.Name == name {
			return p, nil
		}
		names = append(names, p.Name)
	}
	return nil, fmt.Errorf("want one of %s", strings.Join(names, ", "))
}

// parseCard checks a --card flag: a card number of 8 to 20 digits, or "uid:"
// and a card's UID in hex (an M1 wallet, a door card), which it upper-cases.
func parseCard(flag string, id *string) error {
	if err := required(flag, *id); err != nil {
		return err
	}
	if rest, ok := strings.CutPrefix(*id, hostapi.UIDCardPrefix); ok {
		*id = hostapi.UIDCardPrefix + strings.ToUpper(rest)
	}
	var bad *hostapi.CardIDError
	if errors.As(hostapi.CheckCardID(*id), &bad) {
		return usagef("--%s = %+q: %s", flag, *id, bad.Reason)
	}
	return nil
}

func cmdCardM1(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newFlags("card m1", stdout)
	uid := fs.String("uid", "", "the wallet card's UID in hex, 4, 7 or 10 bytes, as 'cardsim m1 new' prints it (required)")
	holder := fs.String("holder", "", "cardholder name; empty for an anonymous card")
	if err := parse(fs, args, dir); err != nil {
		return err
	}
	if err := required("uid", *uid); err != nil {
		return err
	}
	id := hostapi.UIDCardPrefix + strings.ToUpper(*uid)
	if err := hostapi.CheckCardID(id); err != nil {
		return usagef("--uid = %q: want 4, 7 or 10 bytes in hex", *uid)
	}
	st, err := openStore(*dir)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := st.RegisterM1(ctx, *uid, *holder, operator(), time.Now())
	if errors.Is(err, host.ErrExists) {
		return usagef("--uid = %q: registered already", *uid)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "registered M1 wallet %s: holder %q; add credits for it with --card %s\n", c.Number, *holder, c.Number)
	return nil
}

func cmdCreditAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newFlags("credit add", stdout)
	number := fs.String("card", "", "card number, 8 to 20 digits, or uid: and an M1 wallet's UID (required)")
	amount := fs.String("amount", "", "amount in yuan, like 50.00 (required)")
	note := fs.String("note", "", "where the money came from: wechat, alipay, subsidy, …")
	if err := parse(fs, args, dir); err != nil {
		return err
	}
	if err := parseCard("card", number); err != nil {
		return err
	}
	if err := required("amount", *amount); err != nil {
		return err
	}
	fen, err := money.Parse(*amount)
	if err != nil || fen <= 0 || fen > epurse.MaxAmount {
		return usagef("--amount = %q: want an amount like 50.00, more than 0.00", *amount)
	}
	st, err := openStore(*dir)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := st.AddCredit(ctx, *number, fen, *note, operator(), time.Now())
	if errors.Is(err, host.ErrNotFound) {
		return fmt.Errorf("--card = %q: no such card: issue it first with 'cardhost card issue' (an M1 wallet: 'cardhost card m1')", *number)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, c.ID)
	return nil
}

func cmdCreditList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newFlags("credit list", stdout)
	number := fs.String("card", "", "only this card's credits")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parse(fs, args, dir); err != nil {
		return err
	}
	if *number != "" {
		if err := parseCard("card", number); err != nil {
			return err
		}
	}
	st, err := openStore(*dir)
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := st.Credits(ctx, *number)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, list)
	}
	tw, flush := newTable(stdout)
	fmt.Fprintln(tw, "CREDIT\tCARD\tAMOUNT\tSTATE\tADDED\tNOTE")
	for _, c := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Card, money.Format(c.AmountFen), c.State, c.Created, dash(c.Note))
	}
	return flush()
}

func cmdCreditCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newFlags("credit cancel", stdout)
	id := fs.String("id", "", "the credit id 'credit add' printed (required)")
	if err := parse(fs, args, dir); err != nil {
		return err
	}
	if err := required("id", *id); err != nil {
		return err
	}
	st, err := openStore(*dir)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.CancelCredit(ctx, *id, operator(), time.Now()); err != nil {
		if errors.Is(err, host.ErrNotFound) {
			return fmt.Errorf("--id = %q: no such credit", *id)
		}
		return err
	}
	fmt.Fprintf(stdout, "credit %s cancelled\n", *id)
	return nil
}

func cmdCreditSettleM1(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newFlags("credit settle-m1", stdout)
	id := fs.String("id", "", "the credit whose M1 load no terminal can settle (required)")
	applied := fs.String("applied", "", "yes: the wallet got it (the credit is consumed); no: it did not (the credit is pending again) (required)")
	if err := parse(fs, args, dir); err != nil {
		return err
	}
	if err := required("id", *id); err != nil {
		return err
	}
	if *applied != "yes" && *applied != "no" {
		return usagef("--applied = %q: want yes or no", *applied)
	}
	st, err := openStore(*dir)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.SettleM1(ctx, *id, *applied == "yes", operator(), time.Now()); err != nil {
		if errors.Is(err, host.ErrNotFound) {
			return fmt.Errorf("--id = %q: %v", *id, err)
		}
		return err
	}
	fmt.Fprintf(stdout, "credit %s settled: applied %s\n", *id, *applied)
	return nil
}

func cmdDenyAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newFlags("deny add", stdout)
	number := fs.String("card", "", "card number, 8 to 20 digits, or uid: and an M1 wallet's UID (required)")
	reason := fs.String("reason", "lost", "why: lost, stolen, …")
	if err := parse(fs, args, dir); err != nil {
		return err
	}
	if err := parseCard("card", number); err != nil {
		return err
	}
	st, err := openStore(*dir)
	if err != nil {
		return err
	}
	defer st.Close()
	changed, err := st.Deny(ctx, *number, *reason, operator(), time.Now())
	if err != nil {
		return err
	}
	if !changed {
		fmt.Fprintf(stdout, "card %s is on the deny list already (%s)\n", *number, *reason)
		return nil
	}
	fmt.Fprintf(stdout, "card %s denied (%s); terminals learn it at their next pull\n", *number, *reason)
	return nil
}

func cmdDenyRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newFlags("deny remove", stdout)
	number := fs.String("card", "", "card number, 8 to 20 digits, or uid: and an M1 wallet's UID (required)")
	if err := parse(fs, args, dir); err != nil {
		return err
	}
	if err := parseCard("card", number); err != nil {
		return err
	}
	st, err := openStore(*dir)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Undeny(ctx, *number, operator(), time.Now()); err != nil {
		if errors.Is(err, host.ErrNotFound) {
			return fmt.Errorf("--card = %q: not on the deny list", *number)
		}
		return err
	}
	fmt.Fprintf(stdout, "card %s lifted from the deny list; terminals learn it at their next pull\n", *number)
	return nil
}

func cmdLedger(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newFlags("ledger", stdout)
	number := fs.String("card", "", "card number, 8 to 20 digits, or uid: and an M1 wallet's UID (required)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parse(fs, args, dir); err != nil {
		return err
	}
	if err := parseCard("card", number); err != nil {
		return err
	}
	st, err := openStore(*dir)
	if err != nil {
		return err
	}
	defer st.Close()
	l, err := st.Ledger(ctx, *number)
	if errors.Is(err, host.ErrNotFound) {
		return fmt.Errorf("--card = %q: no such card", *number)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, l)
	}
	return printLedger(stdout, l)
}

// printLedger writes a card's ledger as people read it: the card, each
// credit with its events indented under it, and the sums.
func printLedger(w io.Writer, l host.CardLedger) error {
	c := l.Card
	if c.Kind == host.CardM1 {
		// Its balance lives on the wallet only; it has no validity dates.
		fmt.Fprintf(w, "M1 wallet %s  holder %s  registered %s\n", c.Number, dash(c.Holder), c.Issued)
	} else {
		fmt.Fprintf(w, "card %s  holder %s  issued %s  initial balance %s  valid %s to %s\n",
			c.Number, dash(c.Holder), c.Issued, money.Format(c.InitialBalanceFen), c.StartDate, c.ExpiryDate)
	}
	if l.Denied {
		fmt.Fprintf(w, "DENIED: %s\n", l.DenyReason)
	}
	tw, flush := newTable(w)
	fmt.Fprintln(tw, "\nCREDIT\tAMOUNT\tSTATE\tADDED\tNOTE")
	// The card's own events (issue, deny list) come first, as a pseudo-credit.
	fmt.Fprintln(tw, "(card)\t\t\t\t")
	for _, e := range l.Events {
		printEvent(tw, "  ", e)
	}
	for _, cr := range l.Credits {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cr.ID, money.Format(cr.AmountFen), cr.State, cr.Created, dash(cr.Note))
		for _, e := range cr.Events {
			printEvent(tw, "  ", e)
		}
	}
	if err := flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nloaded %s in %d credit(s); pending %s\n", money.Format(l.LoadedFen), countState(l, "consumed"), money.Format(l.PendingFen))
	if l.Alarms > 0 {
		fmt.Fprintf(w, "ALARMS: %d: the card contradicts the host's records; see the alarm lines above\n", l.Alarms)
	}
	return nil
}

func printEvent(tw io.Writer, indent string, e host.LedgerEvent) {
	var what []string
	if e.Counter != nil {
		what = append(what, fmt.Sprintf("counter %d", *e.Counter))
	}
	if e.TAC != "" {
		what = append(what, "TAC "+e.TAC)
	}
	what = append(what, "by "+e.Actor)
	if e.Detail != "" {
		what = append(what, e.Detail)
	}
	event := e.Event
	if event == host.EventAlarm {
		event = "ALARM"
	}
	fmt.Fprintf(tw, "%s%s\t%s\t\t%s\t%s\n", indent, event, amountOf(e), e.Time, strings.Join(what, "; "))
}

func amountOf(e host.LedgerEvent) string {
	if e.AmountFen == nil {
		return ""
	}
	return money.Format(*e.AmountFen)
}

func countState(l host.CardLedger, state string) int {
	n := 0
	for _, c := range l.Credits {
		if c.State == state {
			n++
		}
	}
	return n
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
