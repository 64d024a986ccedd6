package integration

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/reader/vpcd"
)

// topupCall posts a top-up request to the serving host as terminal termID
// and decodes the order it answers.
func topupCall(t *testing.T, base, path, secret string, body any) hostapi.TopupOrder {
	t.Helper()
	status, b := postSigned(t, base, path, termID, secret, body)
	var o hostapi.TopupOrder
	if status != http.StatusOK || json.Unmarshal(b, &o) != nil {
		t.Fatalf("%s: %d %s", path, status, b)
	}
	return o
}

// payPage opens an order's QR link as a phone does: GET shows the page,
// POST with form pays.
func payPage(t *testing.T, method, link string, form url.Values) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	var res *http.Response
	var err error
	if method == http.MethodGet {
		res, err = client.Get(link)
	} else {
		res, err = client.PostForm(link, form)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// pulledCredit counts how often the pull feed lists credit id, and the
// state it lists last.
func pulledCredit(t *testing.T, base, secret, id string) (int, string) {
	t.Helper()
	status, b := postSigned(t, base, hostapi.PathPull, termID, secret, hostapi.PullRequest{})
	var p hostapi.PullResponse
	if status != http.StatusOK || json.Unmarshal(b, &p) != nil {
		t.Fatalf("pull: %d %s", status, b)
	}
	n, state := 0, ""
	for _, c := range p.Credits {
		if c.ID == id {
			n++
			state = c.State
		}
	}
	return n, state
}

// TestKioskTopupThroughServe: through the real `cardhost serve
// --topup-provider sim`, a terminal orders 100.00 for a card, the phone
// opens the QR link (the card masked on the page) and pays, the provider
// notifies twice; the host's query says paid with the order's id as the
// credit's, the pull lists the credit once, and the card, tapped at `cardd
// run`, is loaded with it once. An order paid while the notification is
// held back is found paid by the query and loaded once when the late
// notifications come; an order left unpaid is closed after its timeout,
// its link pays nothing, and the card gets nothing for it.
func TestKioskTopupThroughServe(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	const number = "3101000000960001"
	path := w.issue(t, number, 10000)
	base := startServe(t, w.hostDir, "--topup-provider", "sim", "--topup-timeout", "6s")

	o := topupCall(t, base, hostapi.PathTopupOrder, w.secret, hostapi.TopupOrderRequest{Card: number, AmountFen: 10000, Key: "kiosk-1"})
	if o.State != hostapi.TopupUnpaid || !strings.HasPrefix(o.QR, base+"/pay/sim/"+o.ID+"?sig=") {
		t.Fatalf("order %+v", o)
	}
	if again := topupCall(t, base, hostapi.PathTopupOrder, w.secret, hostapi.TopupOrderRequest{Card: number, AmountFen: 10000, Key: "kiosk-1"}); again != o {
		t.Fatalf("the same key again: %+v, want %+v", again, o)
	}
	status, page := payPage(t, http.MethodGet, o.QR, nil)
	if status != http.StatusOK || !strings.Contains(page, "100.00") || !strings.Contains(page, "3101********0001") || strings.Contains(page, number) {
		t.Fatalf("pay page %d:\n%s", status, page)
	}
	if status, page = payPage(t, http.MethodPost, o.QR, url.Values{"twice": {"1"}}); status != http.StatusOK || !strings.Contains(page, "Paid") {
		t.Fatalf("paying: %d\n%s", status, page)
	}
	if got := topupCall(t, base, hostapi.PathTopupQuery, w.secret, hostapi.TopupQueryRequest{ID: o.ID}); got.State != hostapi.TopupPaid || got.CreditID != o.ID {
		t.Fatalf("query after paying: %+v", got)
	}
	if n, state := pulledCredit(t, base, w.secret, o.ID); n != 1 || state != hostapi.CreditPending {
		t.Fatalf("the pull lists the credit %d times, last %q; want once, pending", n, state)
	}

	// Paid, the notifications held back: the query finds it paid.
	late := topupCall(t, base, hostapi.PathTopupOrder, w.secret, hostapi.TopupOrderRequest{Card: number, AmountFen: 2000, Key: "kiosk-2"})
	payPage(t, http.MethodPost, late.QR, url.Values{"twice": {"1"}, "delay": {"1s"}})
	if got := topupCall(t, base, hostapi.PathTopupQuery, w.secret, hostapi.TopupQueryRequest{ID: late.ID}); got.State != hostapi.TopupPaid {
		t.Fatalf("query of the order paid with its notification held back: %+v", got)
	}

	// Left unpaid: closed after its timeout; its link pays nothing.
	left := topupCall(t, base, hostapi.PathTopupOrder, w.secret, hostapi.TopupOrderRequest{Card: number, AmountFen: 500, Key: "kiosk-3"})
	deadline := time.Now().Add(6*time.Second + 15*time.Second)
	for topupCall(t, base, hostapi.PathTopupQuery, w.secret, hostapi.TopupQueryRequest{ID: left.ID}).State != hostapi.TopupClosed {
		if time.Now().After(deadline) {
			t.Fatal("the unpaid order was not closed within 15 s of its timeout")
		}
		time.Sleep(500 * time.Millisecond)
	}
	if _, page = payPage(t, http.MethodPost, left.QR, nil); !strings.Contains(page, "closed") {
		t.Fatalf("paying the closed order:\n%s", page)
	}

	// The held-back notifications have come by now (the order closed 6 s
	// after the 1 s delay): still one credit each.
	db := sqlOpen(t, filepath.Join(w.hostDir, "host.db"))
	var credits, lateCredits, closedCredits int
	db.QueryRow(`SELECT count(*) FROM credits WHERE card = ?`, number).Scan(&credits)
	db.QueryRow(`SELECT count(*) FROM credits WHERE id = ?`, late.ID).Scan(&lateCredits)
	db.QueryRow(`SELECT count(*) FROM credits WHERE id = ?`, left.ID).Scan(&closedCredits)
	if credits != 2 || lateCredits != 1 || closedCredits != 0 {
		t.Fatalf("%d credits for the card, %d for the late order, %d for the closed one; want 2, 1, 0", credits, lateCredits, closedCredits)
	}

	// The card, tapped at a terminal, gets both paid orders once.
	dir := t.TempDir()
	waitEmpty(t, 0)
	d := startDaemon(t, "CARDD_HOST_URL="+base, "CARDD_HOST_SECRET_FILE="+w.secretFile(t, dir),
		"CARDD_STORE_PATH="+filepath.Join(dir, "cardd.db"), "CARDD_TERMINAL_ID="+termID)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot0Reader })
	in := insert(t, path, 0, vpcd.Options{})
	d.waitLine(t, "tap with the loads", 15*time.Second, isTap("ok"))
	in.remove(t)
	f, err := epursesim.LoadCardFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.EPBalance != 10000+10000+2000 {
		t.Fatalf("card holds %d fen after the tap, want 220.00", f.EPBalance)
	}
	waitConsumed(t, db, number, 2)
}

// waitConsumed waits up to 30 s for the host to hold n of the card's
// credits consumed: a load's TAC reaches it after the tap, through the
// sync loop.
func waitConsumed(t *testing.T, db *sql.DB, number string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var consumed int
		db.QueryRow(`SELECT count(*) FROM credits WHERE card = ? AND state = 'consumed'`, number).Scan(&consumed)
		if consumed == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the %d top-up credits consumed at the host 30 s after the tap", consumed, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
