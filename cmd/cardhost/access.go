package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// cmdAccessSet replaces the door access list terminals in door mode pull.
func cmdAccessSet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newFlags("access set", stdout)
	file := fs.String("file", "", "the access list, JSON (see package door), required")
	if err := parse(fs, args, dir); err != nil {
		return err
	}
	if *file == "" {
		return usagef("--file is required")
	}
	body, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	st, err := openStore(*dir)
	if err != nil {
		return err
	}
	defer st.Close()
	version, err := st.SetAccessList(ctx, body, operator(), time.Now())
	if err != nil {
		return usageError{fmt.Errorf("--file %s: %w", *file, err)}
	}
	fmt.Fprintf(stdout, "access list %s set; door terminals take it at their next pull\n", version)
	return nil
}

// cmdAccessShow prints the access list terminals pull.
func cmdAccessShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := newFlags("access show", stdout)
	if err := parse(fs, args, dir); err != nil {
		return err
	}
	st, err := openStore(*dir)
	if err != nil {
		return err
	}
	defer st.Close()
	version, body, err := st.AccessList(ctx)
	if err != nil {
		return err
	}
	if version == "" {
		return errors.New("no access list set (cardhost access set --file F)")
	}
	fmt.Fprintf(stdout, "version %s\n%s\n", version, body)
	return nil
}
