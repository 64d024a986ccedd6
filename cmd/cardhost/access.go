package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"
)

// accessSet replaces the door access list terminals in door mode pull.
type accessSet struct {
	file string
	body []byte // the file's content, read before the store is opened
}

func (c *accessSet) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.file, "file", "", "the access list, JSON (see package door), required")
}

func (c *accessSet) check() error {
	if c.file == "" {
		return usagef("--file is required")
	}
	body, err := os.ReadFile(c.file)
	if err != nil {
		return err
	}
	c.body = body
	return nil
}

func (c *accessSet) run(ctx context.Context, e *env) error {
	version, err := e.st.SetAccessList(ctx, c.body, operator(), time.Now())
	if err != nil {
		return usageError{fmt.Errorf("--file %s: %w", c.file, err)}
	}
	fmt.Fprintf(e.stdout, "access list %s set; door terminals take it at their next pull\n", version)
	return nil
}

// accessShow prints the access list terminals pull.
type accessShow struct{ noCheck }

func (c *accessShow) flags(fs *pflag.FlagSet) {}

func (c *accessShow) run(ctx context.Context, e *env) error {
	version, body, err := e.st.AccessList(ctx)
	if err != nil {
		return err
	}
	if version == "" {
		return errors.New("no access list set (cardhost access set --file F)")
	}
	fmt.Fprintf(e.stdout, "version %s\n%s\n", version, body)
	return nil
}
