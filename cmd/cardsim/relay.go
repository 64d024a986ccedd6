package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/cardd/cardd/door"
	"github.com/cardd/cardd/internal/pty"
)

// cmdRelay is a virtual door relay board on a pty: it prints every command
// cardd sends it, with the time, naming the LCUS-1 board's open and close
// commands (door.DefaultOpen, door.DefaultClose). It runs until ctx ends.
func cmdRelay(ctx context.Context, args []string, stdout io.Writer) error {
	fs := pflag.NewFlagSet("cardsim relay", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.SortFlags = false
	link := fs.String("link", "/tmp/cardd-relay", "symbolic link to the pty's slave side: the port cardd opens (door.relay.port)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *link == "" {
		return usageError{fmt.Errorf("--link is required")}
	}
	master, slave, path, err := pty.Open()
	if err != nil {
		return err
	}
	defer master.Close()
	defer slave.Close() // held open so a closed port does not read as a hang-up
	if err := pty.Link(path, *link); err != nil {
		return err
	}
	defer os.Remove(*link)
	names := map[string]string{compact(door.DefaultOpen): "open: the lock is released", compact(door.DefaultClose): "close: the lock holds"}
	fmt.Fprintf(stdout, "relay board on %s -> %s\n", *link, path)
	go func() {
		<-ctx.Done()
		master.Close()
	}()
	buf := make([]byte, 64)
	for {
		n, err := master.Read(buf)
		if n > 0 {
			cmd := strings.ToUpper(hex.EncodeToString(buf[:n]))
			fmt.Fprintf(stdout, "%s  % X  %s\n", time.Now().Format("15:04:05.000"), buf[:n], names[cmd])
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("relay board: %w", err)
		}
	}
}

func compact(h string) string { return strings.ReplaceAll(h, " ", "") }
