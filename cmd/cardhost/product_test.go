package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardd/cardd/hostapi"
)

func TestProductCommands(t *testing.T) { eachStore(t, testProductCommands) }

// testProductCommands: product list shows the built-ins; product add and
// set make and change an operator's product, a bad flag naming itself
// and its value (exit 2, nothing changed); card product shows and sets a
// card's product; card issue --product picks one and, without it, an
// anonymous card is issued as one.
func testProductCommands(t *testing.T) {
	dir, _, _ := setup(t)
	out, _ := wantCode(t, 0, "product", "list", "--dir", dir)
	for _, want := range []string{"anonymous  1000.00  no", "named      5000.00  yes"} {
		if !strings.Contains(out, want) {
			t.Fatalf("product list lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []struct {
		args []string
		says string
	}{
		{[]string{"--name", "gift", "--cap", "abc"}, `--cap = "abc"`},
		{[]string{"--name", "gift", "--cap", "0.00"}, `--cap = "0.00"`},
		{[]string{"--name", "gift"}, `--cap = ""`},
		{[]string{"--name", "Gift", "--cap", "10.00"}, `--name = "Gift"`},
		{[]string{"--name", "gift", "--cap", "10.00", "--valid-until", "2027-02-30"}, `--valid-until = "2027-02-30"`},
		{[]string{"--name", "named", "--cap", "10.00"}, `--name = "named": a product of that name exists`},
	} {
		_, errOut := wantCode(t, 2, append([]string{"product", "add", "--dir", dir}, bad.args...)...)
		if !strings.Contains(errOut, bad.says) {
			t.Fatalf("product add %v said %q; want %q", bad.args, errOut, bad.says)
		}
	}
	wantCode(t, 0, "product", "add", "--dir", dir, "--name", "gift", "--cap", "500.00", "--valid-until", "2027-12-31")
	wantCode(t, 2, "product", "set", "--dir", dir, "--name", "gift")
	wantCode(t, 2, "product", "set", "--dir", dir, "--name", "nosuch", "--cap", "1.00")
	if out, _ = wantCode(t, 0, "product", "set", "--dir", dir, "--name", "gift", "--cap", "300.00", "--refundable"); !strings.Contains(out, "cap 300.00, not replaceable, refundable on closing, valid until 2027-12-31") {
		t.Fatalf("product set printed %q", out)
	}

	if out, _ = wantCode(t, 0, "card", "product", "--dir", dir, "--card", number); !strings.Contains(out, "product named, cap 5000.00") {
		t.Fatalf("card product printed %q", out)
	}
	wantCode(t, 2, "card", "product", "--dir", dir, "--card", number, "--set", "nosuch")
	wantCode(t, 2, "card", "product", "--dir", dir, "--card", "3101000000999999", "--set", "gift")
	wantCode(t, 0, "card", "product", "--dir", dir, "--card", number, "--set", "gift")
	wantCode(t, 0, "card", "issue", "--dir", dir, "--number", "3101000000654339", "--out", filepath.Join(t.TempDir(), "a.json"))
	_, errOut := wantCode(t, 2, "card", "issue", "--dir", dir, "--number", "3101000000654347", "--balance", "1000.01", "--out", filepath.Join(t.TempDir(), "b.json"))
	if !strings.Contains(errOut, "--balance = \"1000.01\"") || !strings.Contains(errOut, "anonymous product's cap of 1000.00") {
		t.Fatalf("issuing an anonymous card over its cap said %q", errOut)
	}
	wantCode(t, 0, "card", "issue", "--dir", dir, "--number", "3101000000654354", "--product", "gift", "--out", filepath.Join(t.TempDir(), "c.json"))

	st := testStore(t, dir)
	defer st.Close()
	ctx := context.Background()
	for card, want := range map[string]string{number: "gift", "3101000000654339": hostapi.ProductAnonymous, "3101000000654354": "gift"} {
		if p, err := st.CardProduct(ctx, card); err != nil || p.Name != want {
			t.Fatalf("card %s: product %+v, %v; want %s", card, p, err, want)
		}
	}
	if p, err := st.Product(ctx, "gift"); err != nil || p.CapFen != 30000 || !p.Refundable || p.Replaceable {
		t.Fatalf("gift: %+v, %v", p, err)
	}
}
