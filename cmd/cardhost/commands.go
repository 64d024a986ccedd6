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

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/apdu/psam"
	psamsim "github.com/cardd/cardd/apdu/psam/sim"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/redact"
)

// initCmd makes a host directory; it opens nothing, the directory does
// not exist yet.
type initCmd struct{ noCheck }

func (c *initCmd) flags(fs *pflag.FlagSet) {}

func (c *initCmd) run(ctx context.Context, e *env) error {
	if err := host.InitDir(e.dir, e.db); err != nil {
		if errors.Is(err, host.ErrExists) {
			return usagef("--dir = %q: %v", e.dir, err)
		}
		return err
	}
	store := filepath.Join(e.dir, host.DBFile)
	if e.db != "" {
		store = "the database at " + host.RedactURL(e.db)
	}
	fmt.Fprintf(e.stdout, "initialized %s: %s and %s (issuer master keys, mode 0600: keep them secret and backed up)\n",
		e.dir, store, filepath.Join(e.dir, host.MastersFile))
	return nil
}

// terminalAdd registers a terminal and writes its secret to a new file.
type terminalAdd struct {
	id, out string
	canon   string // id, checked and canonical
}

func (c *terminalAdd) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.id, "id", "", "terminal id, 12 hex digits, as in the terminal's terminal.id (required)")
	fs.StringVar(&c.out, "secret-out", "", "file to write the terminal's secret to, mode 0600, for its host.secret_file (required; refused if it exists)")
}

func (c *terminalAdd) check() error {
	if err := required("id", c.id); err != nil {
		return err
	}
	if err := required("secret-out", c.out); err != nil {
		return err
	}
	canon, err := host.CanonicalTerminalID(c.id)
	if err != nil {
		return usagef("--id = %q: want 12 hex digits, like 000000000001", c.id)
	}
	c.canon = canon
	if _, err := os.Lstat(c.out); err == nil {
		return usagef("--secret-out = %q: the file exists; refusing to overwrite it", c.out)
	}
	return nil
}

func (c *terminalAdd) run(ctx context.Context, e *env) error {
	secret, err := host.NewTerminalSecret()
	if err != nil {
		return err
	}
	// The file first: a terminal registered with a secret nobody holds
	// would block the corrected command that follows.
	if err := writeSecretFile(c.out, secret); err != nil {
		return fmt.Errorf("--secret-out = %q: %w", c.out, err)
	}
	if err := e.st.AddTerminal(ctx, c.canon, secret, time.Now()); err != nil {
		os.Remove(c.out)
		if errors.Is(err, host.ErrExists) {
			return usagef("--id = %q: terminal %s is registered already", c.id, c.canon)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "terminal %s registered; its secret is in %s (mode 0600): copy it to the terminal and set host.secret_file to it\n", c.canon, c.out)
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

// terminalList prints the registered terminals.
type terminalList struct{ noCheck }

func (c *terminalList) flags(fs *pflag.FlagSet) {}

func (c *terminalList) run(ctx context.Context, e *env) error {
	list, err := e.st.Terminals(ctx)
	if err != nil {
		return err
	}
	tw, flush := newTable(e.stdout)
	fmt.Fprintln(tw, "ID\tREGISTERED\tLAST SEEN\tVERSION\tQUEUE\tREADERS\tMERCHANT")
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", t.ID, t.Created, dash(t.LastSeen), dash(t.Version), t.QueueDepth, dash(strings.Join(t.Readers, ", ")), dash(t.Merchant))
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

// cardIssue issues a card: its file for the simulator and its registration.
type cardIssue struct {
	number, profile, holder, balance, start, expiry, out, purchaseDiv, class string
	history, purchaseKey                                                     int
	securityCode                                                             bool
	product                                                                  string // --product: "" for the default by holder

	// Checked from the flags.
	purchase              psamsim.CardPurchase
	prof                  *epurse.Profile
	fen                   int64
	startDate, expiryDate epurse.Date
}

func (c *cardIssue) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.number, "number", "", "card number as printed on the card: 8 to 16 digits for a campus card, 19 for a T-Union card (required)")
	fs.StringVar(&c.profile, "profile", "campus", "numbering and layout of the card: campus (8 to 16 digits in BCD, our own) or tunion (19 digits, T-Union AID, a second purse)")
	fs.StringVar(&c.holder, "holder", "", "cardholder name (stored as GBK on the card); empty for an anonymous card")
	fs.StringVar(&c.class, "class", "", "the card's identity class (student, staff, …), which terminals pull; empty for none")
	fs.StringVar(&c.product, "product", "", "the card's product ('cardhost product list'); default named with a --holder, else anonymous")
	fs.StringVar(&c.balance, "balance", "0.00", "EP balance at issue, in yuan, like 100.00")
	fs.StringVar(&c.start, "start", "", "first valid day, YYYY-MM-DD (default a year ago, so a --history lies within it)")
	fs.StringVar(&c.expiry, "expiry", "", "last valid day, YYYY-MM-DD (default start + 4 years)")
	fs.StringVar(&c.out, "out", "", "card file to write, mode 0600, for 'cardsim card --file' (required; refused if it exists)")
	fs.IntVar(&c.history, "history", 0, "give the card this many past transactions (0-50), made with its own commands; not credits of this host")
	fs.StringVar(&c.purchaseDiv, "purchase-diversification", "one", "the purchase key: one level (cardd's PSAMs), or two by issuer (T-Union) or city code (CJ/T 166), for PSAMs keyed so")
	fs.IntVar(&c.purchaseKey, "purchase-key-index", 1, "the purchase key index the card answers to (1-255), as the PSAM's EF 0x17 says")
	fs.BoolVar(&c.securityCode, "security-code", false, "give the card a security code (80 CA 00 00 09) for PSAMs that check one")
}

// check takes the flags in the order an operator reads the errors: the
// purchase key, the required flags, the card, its validity, the file.
func (c *cardIssue) check() error {
	if err := c.checkPurchase(); err != nil {
		return err
	}
	if err := required("number", c.number); err != nil {
		return err
	}
	if c.class != "" {
		if err := checkClassFlag(c.class); err != nil {
			return err
		}
	}
	if c.product != "" {
		if err := hostapi.CheckProductName(c.product); err != nil {
			return usagef("--product = %q: %v", c.product, err)
		}
	}
	if c.history < 0 || c.history > 50 {
		return usagef("--history = %d: want 0 to 50", c.history)
	}
	if err := required("out", c.out); err != nil {
		return err
	}
	if err := c.checkCard(); err != nil {
		return err
	}
	if err := c.checkValidity(); err != nil {
		return err
	}
	if _, err := os.Lstat(c.out); err == nil {
		return usagef("--out = %q: the file exists; refusing to overwrite it", c.out)
	}
	return nil
}

// checkPurchase sets the purchase key the card answers to.
func (c *cardIssue) checkPurchase() error {
	div, err := psam.ParseDiversification(c.purchaseDiv)
	if err != nil {
		return usagef("--purchase-diversification = %q: want one, issuer or city", c.purchaseDiv)
	}
	if c.purchaseKey < 1 || c.purchaseKey > 255 {
		return usagef("--purchase-key-index = %d: want 1 to 255", c.purchaseKey)
	}
	c.purchase = psamsim.CardPurchase{Diversification: div, KeyIndex: byte(c.purchaseKey), SecurityCode: c.securityCode}
	return nil
}

// checkCard sets the card's profile and balance and checks its number.
func (c *cardIssue) checkCard() error {
	var err error
	if c.prof, err = issuableProfile(c.profile); err != nil {
		return usagef("--profile = %q: %v", c.profile, err)
	}
	var bad *hostapi.CardIDError
	if errors.As(host.CheckCardNumber(c.number), &bad) {
		return usagef("--number = %+q: %s", c.number, bad.Reason)
	}
	c.fen, err = money.Parse(c.balance)
	if err != nil || c.fen < 0 || c.fen > epurse.MaxAmount {
		return usagef("--balance = %q: want an amount like 100.00, 0.00 to %s", c.balance, money.Format(epurse.MaxAmount))
	}
	return nil
}

// checkValidity sets the first and last valid days: by default from a year
// ago, so a --history lies within it, for four years.
func (c *cardIssue) checkValidity() error {
	var err error
	c.startDate = epurse.DateOf(time.Now().AddDate(-1, 0, 0))
	if c.start != "" {
		if c.startDate, err = epurse.ParseDateString(c.start); err != nil || c.startDate.IsZero() {
			return usagef("--start = %q: want a date like 2026-09-01", c.start)
		}
	}
	c.expiryDate = epurse.DateOf(time.Date(c.startDate.Year+4, c.startDate.Month, c.startDate.Day, 0, 0, 0, 0, time.UTC))
	if c.expiry != "" {
		if c.expiryDate, err = epurse.ParseDateString(c.expiry); err != nil || c.expiryDate.IsZero() {
			return usagef("--expiry = %q: want a date like 2030-08-31", c.expiry)
		}
	}
	if c.expiryDate.Before(c.startDate) {
		return usagef("--expiry = %q: before the start date %s", c.expiryDate, c.startDate)
	}
	return nil
}

func (c *cardIssue) run(ctx context.Context, e *env) error {
	req := host.IssueRequest{Number: c.number, Profile: c.prof, Holder: c.holder, BalanceFen: c.fen, Start: c.startDate, Expiry: c.expiryDate, Class: c.class, Product: c.product}
	f, err := e.st.IssueCard(ctx, e.keys, req, c.out, operator(), time.Now())
	switch {
	case errors.Is(err, host.ErrNotFound):
		return usagef("--product = %q: no such product ('cardhost product list')", c.product)
	case errors.Is(err, host.ErrOverProductCap):
		return usagef("--balance = %q: %v", c.balance, err)
	case errors.Is(err, host.ErrExists):
		return usagef("--number = %q: %v", c.number, err)
	case errors.Is(err, epurse.ErrBadArgument):
		return usagef("%v", err) // the holder name, mostly (GBK, 20 bytes), or a number the profile cannot carry
	case err != nil:
		return err
	}
	if f, err = c.personalize(e.keys, f); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "issued card %s: holder %q, EP balance %s, valid %s to %s, %d past transactions, written to %s (mode 0600)\n",
		redact.CardNumber(f.Info.CardNumber), c.holder, money.Format(f.EPBalance), c.startDate, c.expiryDate, len(f.Log), c.out)
	return nil
}

// personalize gives the issued card its --history and, if it is not the
// default, its purchase key, and saves it; it returns the card as saved.
func (c *cardIssue) personalize(keys *host.Keys, f *epursesim.CardFile) (*epursesim.CardFile, error) {
	if c.history > 0 {
		card := epursesim.NewSimCard(f, c.out)
		if err := keys.SeedHistory(card, [6]byte{0, 0, 0, 0, 0x10, 0x01}, c.history, time.Now()); err != nil {
			return nil, fmt.Errorf("card history: %w", err)
		}
		f = card.File()
	}
	if c.purchase != (psamsim.CardPurchase{KeyIndex: 1}) {
		// After the history, which was paid with the one-level key.
		keys.PersonalizePurchase(f, c.purchase)
		if err := f.Save(c.out); err != nil {
			return nil, err
		}
	}
	return f, nil
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

// cardM1 registers an M1 wallet card by its UID.
type cardM1 struct{ uid, holder string }

func (c *cardM1) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.uid, "uid", "", "the wallet card's UID in hex, 4, 7 or 10 bytes, as 'cardsim m1 new' prints it (required)")
	fs.StringVar(&c.holder, "holder", "", "cardholder name; empty for an anonymous card")
}

func (c *cardM1) check() error {
	if err := required("uid", c.uid); err != nil {
		return err
	}
	if err := hostapi.CheckCardID(hostapi.UIDCardPrefix + strings.ToUpper(c.uid)); err != nil {
		return usagef("--uid = %q: want 4, 7 or 10 bytes in hex", c.uid)
	}
	return nil
}

func (c *cardM1) run(ctx context.Context, e *env) error {
	card, err := e.st.RegisterM1(ctx, c.uid, c.holder, operator(), time.Now())
	if errors.Is(err, host.ErrExists) {
		return usagef("--uid = %q: registered already", c.uid)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "registered M1 wallet %s: holder %q; add credits for it with --card %s\n", card.Number, c.holder, card.Number)
	return nil
}

// creditAdd records money paid for a card.
type creditAdd struct {
	cardFlag
	operatorFlag
	amount, note string
	fen          int64 // amount, checked
}

func (c *creditAdd) flags(fs *pflag.FlagSet) {
	c.cardFlag.flags(fs)
	fs.StringVar(&c.amount, "amount", "", "amount in yuan, like 50.00 (required)")
	fs.StringVar(&c.note, "note", "", "where the money came from: wechat, alipay, subsidy, …")
	c.operatorFlag.flags(fs)
}

func (c *creditAdd) check() error {
	if err := c.cardFlag.check(); err != nil {
		return err
	}
	if err := required("amount", c.amount); err != nil {
		return err
	}
	var err error
	if c.fen, err = amountFlag("amount", c.amount, "50.00"); err != nil {
		return err
	}
	return c.operatorFlag.check()
}

func (c *creditAdd) run(ctx context.Context, e *env) error {
	cr, err := e.st.AddCredit(ctx, c.number, c.fen, c.note, c.actor(), time.Now())
	if errors.Is(err, host.ErrNotFound) {
		return fmt.Errorf("--card = %q: no such card: issue it first with 'cardhost card issue' (an M1 wallet: 'cardhost card m1')", c.number)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, cr.ID)
	// The id alone goes to stdout, for scripts; a credit that waits says
	// so where the operator reads it.
	if info, err := e.st.Credit(ctx, cr.ID); err == nil && info.Approval == "awaiting" {
		fmt.Fprintf(e.stderr, "credit %s is above the approval threshold: no terminal loads it until another operator runs 'cardhost credit approve --id %s'\n", cr.ID, cr.ID)
	}
	return nil
}

// creditList prints credits, all or one card's.
type creditList struct {
	number string
	asJSON bool
}

func (c *creditList) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.number, "card", "", "only this card's credits")
	fs.BoolVar(&c.asJSON, "json", false, "print JSON instead of a table")
}

func (c *creditList) check() error {
	if c.number == "" {
		return nil
	}
	return parseCard("card", &c.number)
}

func (c *creditList) run(ctx context.Context, e *env) error {
	list, err := e.st.Credits(ctx, c.number)
	if err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(e.stdout, list)
	}
	tw, flush := newTable(e.stdout)
	fmt.Fprintln(tw, "CREDIT\tCARD\tAMOUNT\tSTATE\tADDED\tNOTE")
	for _, cr := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cr.ID, cr.Card, money.Format(cr.AmountFen), creditState(cr), cr.Created, dash(cr.Note))
	}
	return flush()
}

// creditState is a credit's state as operators read it: a pending credit
// awaiting approval says so.
func creditState(cr host.CreditInfo) string {
	if cr.State == "pending" && cr.Approval == "awaiting" {
		return "awaiting approval"
	}
	return cr.State
}

// creditCancel withdraws a pending credit.
type creditCancel struct {
	operatorFlag
	id, reason string
}

func (c *creditCancel) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.id, "id", "", "the credit id 'credit add' printed (required)")
	fs.StringVar(&c.reason, "reason", "", "why, for the ledger: wrong card, wrong amount, …")
	c.operatorFlag.flags(fs)
}

func (c *creditCancel) check() error {
	if err := required("id", c.id); err != nil {
		return err
	}
	return c.operatorFlag.check()
}

func (c *creditCancel) run(ctx context.Context, e *env) error {
	if err := e.st.CancelCreditWithReason(ctx, c.id, c.actor(), c.reason, time.Now()); err != nil {
		if errors.Is(err, host.ErrNotFound) {
			return fmt.Errorf("--id = %q: no such credit", c.id)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "credit %s cancelled\n", c.id)
	return nil
}

// creditSettleM1 settles an M1 load no terminal can tell the end of.
type creditSettleM1 struct{ id, applied string }

func (c *creditSettleM1) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.id, "id", "", "the credit whose M1 load no terminal can settle (required)")
	fs.StringVar(&c.applied, "applied", "", "yes: the wallet got it (the credit is consumed); no: it did not (the credit is pending again) (required)")
}

func (c *creditSettleM1) check() error {
	if err := required("id", c.id); err != nil {
		return err
	}
	if c.applied != "yes" && c.applied != "no" {
		return usagef("--applied = %q: want yes or no", c.applied)
	}
	return nil
}

func (c *creditSettleM1) run(ctx context.Context, e *env) error {
	if err := e.st.SettleM1(ctx, c.id, c.applied == "yes", operator(), time.Now()); err != nil {
		if errors.Is(err, host.ErrNotFound) {
			return fmt.Errorf("--id = %q: %v", c.id, err)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "credit %s settled: applied %s\n", c.id, c.applied)
	return nil
}

// cardFlag is the --card flag of the commands about one card, required.
type cardFlag struct{ number string }

func (c *cardFlag) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.number, "card", "", "card number, 8 to 20 digits, or uid: and an M1 wallet's UID (required)")
}

func (c *cardFlag) check() error { return parseCard("card", &c.number) }

// denyAdd puts a card on the deny list terminals pull.
type denyAdd struct {
	cardFlag
	reason string
}

func (c *denyAdd) flags(fs *pflag.FlagSet) {
	c.cardFlag.flags(fs)
	fs.StringVar(&c.reason, "reason", "lost", "why: lost, stolen, …")
}

func (c *denyAdd) run(ctx context.Context, e *env) error {
	changed, err := e.st.Deny(ctx, c.number, c.reason, operator(), time.Now())
	if err != nil {
		return err
	}
	if !changed {
		fmt.Fprintf(e.stdout, "card %s is on the deny list already (%s)\n", c.number, c.reason)
		return nil
	}
	fmt.Fprintf(e.stdout, "card %s denied (%s); terminals learn it at their next pull\n", c.number, c.reason)
	return nil
}

// denyRemove lifts a card from the deny list.
type denyRemove struct{ cardFlag }

func (c *denyRemove) run(ctx context.Context, e *env) error {
	if err := e.st.Undeny(ctx, c.number, operator(), time.Now()); err != nil {
		if errors.Is(err, host.ErrReplacedCard) || errors.Is(err, host.ErrClosedCard) {
			return usageError{err}
		}
		if errors.Is(err, host.ErrNotFound) {
			return fmt.Errorf("--card = %q: not on the deny list", c.number)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "card %s lifted from the deny list; terminals learn it at their next pull\n", c.number)
	return nil
}

// ledger prints a card's credits and what became of each.
type ledger struct {
	cardFlag
	asJSON bool
}

func (c *ledger) flags(fs *pflag.FlagSet) {
	c.cardFlag.flags(fs)
	fs.BoolVar(&c.asJSON, "json", false, "print JSON instead of a table")
}

func (c *ledger) run(ctx context.Context, e *env) error {
	l, err := e.st.Ledger(ctx, c.number)
	if errors.Is(err, host.ErrNotFound) {
		return fmt.Errorf("--card = %q: no such card", c.number)
	}
	if err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(e.stdout, l)
	}
	return printLedger(e.stdout, l)
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
	printReplacement(w, l)
	tw, flush := newTable(w)
	fmt.Fprintln(tw, "\nCREDIT\tAMOUNT\tSTATE\tADDED\tNOTE")
	// The card's own events (issue, deny list) come first, as a pseudo-credit.
	fmt.Fprintln(tw, "(card)\t\t\t\t")
	for _, e := range l.Events {
		printEvent(tw, "  ", e)
	}
	for _, cr := range l.Credits {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cr.ID, money.Format(cr.AmountFen), creditState(cr.CreditInfo), cr.Created, dash(cr.Note))
		for _, e := range cr.Events {
			printEvent(tw, "  ", e)
		}
	}
	if err := flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nloaded %s in %d credit(s); pending %s\n", money.Format(l.LoadedFen), countState(l, "consumed"), money.Format(l.PendingFen))
	if l.AwaitingFen != 0 {
		fmt.Fprintf(w, "awaiting approval %s: no terminal loads it until a second operator approves\n", money.Format(l.AwaitingFen))
	}
	if l.CorrectedFen != 0 {
		fmt.Fprintf(w, "corrected %s: loaded by mistake, still on the card, owed back by the holder\n", money.Format(l.CorrectedFen))
	}
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
