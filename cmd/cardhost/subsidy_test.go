package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/host"
)

func TestSubsidyCommands(t *testing.T) { eachStore(t, testSubsidyCommands) }

func testSubsidyCommands(t *testing.T) {
	dir, _, _ := setup(t)
	others := []string{"3101000000200001", "3101000000200002"}
	for _, n := range others {
		wantCode(t, 0, "card", "issue", "--dir", dir, "--number", n, "--holder", "李四", "--balance", "0.00",
			"--start", "2026-09-01", "--expiry", "2030-08-31", "--out", filepath.Join(t.TempDir(), n+".json"))
	}
	file := filepath.Join(t.TempDir(), "cards.txt")
	if err := os.WriteFile(file, []byte("# 三年级\n"+others[0]+"\n\n"+others[1]+" # 转学生\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(48 * time.Hour).Format(time.RFC3339)
	add := []string{"subsidy", "add", "--dir", dir, "--id", "dec-lunch", "--amount", "12.00", "--until", until, "--note", "午餐补助", "--cards", file, number}
	out, _ := wantCode(t, 0, add...)
	if !strings.Contains(out, "subsidy dec-lunch: 12.00 onto the EP purse of 3 cards") {
		t.Fatalf("subsidy add printed %q", out)
	}
	out, _ = wantCode(t, 0, add...)
	if !strings.Contains(out, "exists already") {
		t.Fatalf("a second add printed %q, want that nothing changed", out)
	}
	out, _ = wantCode(t, 0, "subsidy", "list", "--dir", dir, "--json")
	var list []host.Subsidy
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Cards != 3 || list[0].Pending != 3 || list[0].AmountFen != 1200 || list[0].Purse != "EP" {
		t.Fatalf("subsidy list %+v, want one batch of 3 pending", list)
	}
	out, _ = wantCode(t, 0, "credit", "list", "--dir", dir)
	if got := strings.Count(out, "午餐补助"); got != 3 {
		t.Fatalf("credit list shows %d subsidy credits, want 3:\n%s", got, out)
	}
	out, _ = wantCode(t, 0, "subsidy", "expire", "--dir", dir)
	if !strings.HasPrefix(out, "0 ") {
		t.Fatalf("subsidy expire printed %q, want nothing withdrawn before the expiry", out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--amount", "1.00", "--until", until}, "no cards"},
		{[]string{"--amount", "1.00", number}, "--until is required"},
		{[]string{"--amount", "1.00", "--until", "tomorrow", number}, `--until = "tomorrow"`},
		{[]string{"--amount", "1.00", "--until", until, "--purse", "M1", number}, `--purse = "M1"`},
		{[]string{"--amount", "0", "--until", until, number}, `--amount = "0"`},
		{[]string{"--amount", "1.00", "--until", until, "12"}, `card "12"`},
		{[]string{"--amount", "1.00", "--until", until, "--cards", filepath.Join(dir, "none")}, "--cards = "},
	} {
		_, errOut := wantCode(t, 2, append([]string{"subsidy", "add", "--dir", dir}, c.args...)...)
		if !strings.Contains(errOut, c.want) {
			t.Errorf("subsidy add %v: stderr %q, want %q", c.args, errOut, c.want)
		}
	}
	_, errOut := wantCode(t, 1, "subsidy", "add", "--dir", dir, "--amount", "1.00", "--until", until, "3101000000999999")
	if !strings.Contains(errOut, "issue every card") {
		t.Errorf("a batch with an unknown card: stderr %q", errOut)
	}
	_, errOut = wantCode(t, 1, "subsidy", "add", "--dir", dir, "--amount", "1.00", "--until", "2020-01-01", number)
	if !strings.Contains(errOut, "past") {
		t.Errorf("a batch expired already: stderr %q", errOut)
	}
	wantCode(t, 2, "subsidy", "list", "--dir", dir, "extra")
	if out, _ := wantCode(t, 0, "subsidy", "list", "--dir", dir); strings.Count(out, "\n") != 2 {
		t.Fatalf("refused adds left batches:\n%s", out)
	}
}
