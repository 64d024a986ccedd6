package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/money"
)

// operatorFlag is --operator: the person the ledger names for a command
// about money on cards. Two operators sharing one login (a desk's
// account) name themselves with it; without it the ledger names the
// login, as for every other command.
type operatorFlag struct{ name string }

func (o *operatorFlag) flags(fs *pflag.FlagSet) {
	fs.StringVar(&o.name, "operator", "", "your name, as the ledger records it (default: your login name)")
}

// maxOperatorLen bounds an operator's name: a login name, not a sentence.
const maxOperatorLen = 64

// check refuses a name the ledger could not tell apart from another: empty
// once given, with spaces, or odd characters.
func (o *operatorFlag) check() error {
	if o.name == "" {
		return nil
	}
	ok := utf8.RuneCountInString(o.name) <= maxOperatorLen
	for _, r := range o.name {
		ok = ok && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._@-", r))
	}
	if !ok {
		return usagef("--operator = %q: want a name of at most %d letters, digits and . _ @ -", o.name, maxOperatorLen)
	}
	return nil
}

// actor is the operator as the ledger names them.
func (o *operatorFlag) actor() string {
	if o.name != "" {
		return "operator " + o.name
	}
	return operator()
}

// amountFlag reads flag's amount of money: more than 0.00 and at most
// what one load may carry.
func amountFlag(flag, value, example string) (int64, error) {
	fen, err := money.Parse(value)
	if err != nil || fen <= 0 || fen > epurse.MaxAmount {
		return 0, usagef("--%s = %q: want an amount like %s, more than 0.00 and at most %s", flag, value, example, money.Format(epurse.MaxAmount))
	}
	return fen, nil
}

// creditApprove is a second operator's approval of a credit above the
// approval threshold.
type creditApprove struct {
	operatorFlag
	id, note string
}

func (c *creditApprove) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.id, "id", "", "the credit awaiting approval (required)")
	c.operatorFlag.flags(fs)
	fs.StringVar(&c.note, "note", "", "what you checked, for the ledger")
}

func (c *creditApprove) check() error {
	if err := required("id", c.id); err != nil {
		return err
	}
	return c.operatorFlag.check()
}

func (c *creditApprove) run(ctx context.Context, e *env) error {
	err := e.st.ApproveCredit(ctx, c.id, c.actor(), c.note, time.Now())
	if self, ok := errors.AsType[*host.SelfApprovalError](err); ok {
		return usageError{self}
	}
	if errors.Is(err, host.ErrNotFound) {
		return fmt.Errorf("--id = %q: no such credit", c.id)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "credit %s approved by %s; terminals learn it at their next pull\n", c.id, c.actor())
	return nil
}

// creditCorrect records that a loaded credit was a mistake: money owed back.
type creditCorrect struct {
	operatorFlag
	id, reason, amount string
	fen                int64 // amount, checked; 0 for all that is left
}

func (c *creditCorrect) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.id, "id", "", "the loaded credit (required)")
	fs.StringVar(&c.reason, "reason", "", "why it was a mistake, for the ledger (required)")
	fs.StringVar(&c.amount, "amount", "", "how much of it, like 20.00 (default: all of it not corrected yet)")
	c.operatorFlag.flags(fs)
}

func (c *creditCorrect) check() error {
	if err := required("id", c.id); err != nil {
		return err
	}
	if strings.TrimSpace(c.reason) == "" {
		return usagef("--reason is required: the ledger says why")
	}
	if c.amount != "" {
		var err error
		if c.fen, err = amountFlag("amount", c.amount, "20.00"); err != nil {
			return err
		}
	}
	return c.operatorFlag.check()
}

func (c *creditCorrect) run(ctx context.Context, e *env) error {
	fen, err := e.st.CorrectCredit(ctx, c.id, c.fen, c.actor(), c.reason, time.Now())
	if errors.Is(err, host.ErrNotFound) {
		return fmt.Errorf("--id = %q: no such credit", c.id)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "credit %s: correction of -%s recorded; the money is still on the card: recover %s from the holder\n",
		c.id, money.Format(fen), money.Format(fen))
	return nil
}

// creditThreshold shows or sets the approval threshold.
type creditThreshold struct {
	operatorFlag
	above string
	off   bool
	fen   int64 // above, checked
}

func (c *creditThreshold) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.above, "above", "", "credits added for more than this, like 2000.00, wait for a second operator's approval")
	fs.BoolVar(&c.off, "off", false, "no threshold: no credit waits")
	c.operatorFlag.flags(fs)
}

func (c *creditThreshold) check() error {
	if c.above != "" && c.off {
		return usagef("--above and --off: give one")
	}
	if c.above != "" {
		var err error
		if c.fen, err = amountFlag("above", c.above, "2000.00"); err != nil {
			return err
		}
	}
	return c.operatorFlag.check()
}

func (c *creditThreshold) run(ctx context.Context, e *env) error {
	if c.above != "" || c.off {
		if err := e.st.SetApprovalThreshold(ctx, c.fen, c.actor(), time.Now()); err != nil {
			return err
		}
	}
	s, err := e.st.ApprovalThreshold(ctx)
	if err != nil {
		return err
	}
	if s.AboveFen == 0 {
		fmt.Fprintf(e.stdout, "no approval threshold: no credit waits%s\n", setBy(s))
		return nil
	}
	fmt.Fprintf(e.stdout, "credits above %s wait for a second operator's approval%s\n", money.Format(s.AboveFen), setBy(s))
	return nil
}

func setBy(s host.ApprovalSetting) string {
	if s.Actor == "" {
		return ""
	}
	return fmt.Sprintf(" (set by %s at %s)", s.Actor, s.Updated)
}
