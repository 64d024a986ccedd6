package integration

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader/vpcd"
)

// TestReconciliationDay: three POS terminals (`cardd run --mode pos`, one
// PSAM moved between them) and `cardhost serve`. A day of a sale at A, a
// load at B and a sale at C settles with no difference: `cardhost report
// daily --csv` shows the ledger's loads, the purchases' TACs verified, and
// `cardhost alarms` nothing. Then a purchase uploaded with a forged TAC, a
// sale at C whose row never reaches the host (C lost it) followed by a
// sale at A, are each one alarm: the forged TAC, the card's purchase
// counter skipping the lost sale, the PSAM's serial skipping it; an
// operator acknowledges one with a note.
func TestReconciliationDay(t *testing.T) {
	requirePCSC(t)
	ctx := context.Background()
	w := newHostWorld(t)
	insertPSAM(t, w.hostDir)
	const number, termB, termC = "3101000000800032", "000000000002", "000000000003"
	path := w.issue(t, number, 10000)
	dir := t.TempDir()
	secrets := map[string]string{termID: w.secretFile(t, dir)}
	for _, term := range []string{termB, termC} {
		secret, err := host.NewTerminalSecret()
		if err != nil {
			t.Fatal(err)
		}
		if err := w.host.AddTerminal(ctx, term, secret, time.Now()); err != nil {
			t.Fatal(err)
		}
		secrets[term] = filepath.Join(dir, term+".secret")
		if err := os.WriteFile(secrets[term], []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hostURL := startServe(t, w.hostDir)
	env := func(term, url string) []string {
		return []string{"CARDD_MODE=pos", "CARDD_READER_SAM_PATTERN=^" + regexp.QuoteMeta(slot1Reader) + "$",
			"CARDD_HOST_URL=" + url, "CARDD_HOST_SECRET_FILE=" + secrets[term],
			"CARDD_STORE_PATH=" + filepath.Join(dir, term+".db"), "CARDD_TERMINAL_ID=" + term}
	}
	start := func(e []string) *daemon {
		waitEmpty(t, 0)
		d := startDaemon(t, e...)
		d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot1Reader && m["role"] == "sam" })
		return d
	}
	sell := func(e []string, amount string) {
		wait := posCharge(t, e, "", amount, "--wait", "20s")
		in := insert(t, path, 0, vpcd.Options{})
		if out, err := wait(); err != nil || !strings.Contains(out, "paid "+amount) {
			t.Fatalf("cardd pos charge %s: %v\n%s", amount, err, out)
		}
		if err := in.remove(t); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Now().Format(time.DateOnly)
	// uploaded waits until the host holds the day's rows: loads and
	// purchases.
	uploaded := func(loads, purchases int) host.DailyReport {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			rep, err := w.host.Daily(ctx, day)
			if err == nil && rep.Total.Loads == loads && rep.Total.Purchases == purchases {
				return rep
			} else if time.Now().After(deadline) {
				t.Fatalf("the host holds %+v (%v); want %d loads, %d purchases", rep.Total, err, loads, purchases)
			}
		}
	}

	d := start(env(termID, hostURL))
	sell(env(termID, hostURL), "12.50")
	uploaded(0, 1)
	d.stop(t, 10*time.Second)
	if _, err := w.host.AddCredit(ctx, number, 2000, "cash", "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	d = start(env(termB, hostURL))
	in := insert(t, path, 0, vpcd.Options{})
	if m := d.waitLine(t, "the tap", 20*time.Second, func(m map[string]any) bool { return m["msg"] == "tap" }); m["outcome"] != "ok" {
		t.Fatalf("the load's tap at B: %v", m)
	}
	if err := in.remove(t); err != nil {
		t.Fatal(err)
	}
	uploaded(1, 1)
	d.stop(t, 10*time.Second)
	d = start(env(termC, hostURL))
	sell(env(termC, hostURL), "3.00")
	uploaded(1, 2)
	d.stop(t, 10*time.Second)

	out := cardhostCLI(t, w.hostDir, "report", "daily", "--date", day, "--csv")
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) != 5 {
		t.Fatalf("report daily --csv: %v\n%s", err, out)
	}
	l, err := w.host.Ledger(ctx, number)
	if err != nil {
		t.Fatal(err)
	}
	total := recs[4]
	if total[1] != "TOTAL" || total[3] != "20.00" || total[4] != money.Format(l.LoadedFen) ||
		total[6] != "15.50" || total[7] != "15.50" || total[9] != "0.00" {
		t.Fatalf("the day's settlement %q; want loads 20.00 as the ledger's, purchases 15.50 all verified, no difference", recs)
	}
	if open, err := w.host.Alarms(ctx, false); err != nil || len(open) != 0 {
		t.Fatalf("alarms on a settled day: %+v %v", open, err)
	}

	// C's sale, as the terminal holds it, uploaded again with a forged TAC
	// under another id: the same debit, a TAC the card did not make.
	sc, err := offline.Open(filepath.Join(dir, termC+".db"), termC)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := sc.List(ctx, 0, 20)
	sc.Close()
	var sale hostapi.JournalRow
	for _, r := range rows {
		if r.Kind == offline.KindPurchase && r.State == offline.StateDone {
			sale = r.HostRow()
		}
	}
	if err != nil || sale.TAC == "" || sale.PSAMTerminal == "" {
		t.Fatalf("C's sale: %+v %v", sale, err)
	}
	forged := sale
	forged.ID, forged.TAC = termC+"-999", strings.Map(func(r rune) rune {
		if r == '0' {
			return '1'
		}
		return '0'
	}, sale.TAC)
	secretC, err := os.ReadFile(secrets[termC])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(hostapi.JournalRequest{Rows: []hostapi.JournalRow{forged}})
	for i := range 2 {
		req, _ := http.NewRequest(http.MethodPost, hostURL+hostapi.PathJournal, bytes.NewReader(body))
		hostapi.Sign(req, termC, bytes.TrimSpace(secretC), body, time.Now(), fmt.Sprintf("00112233445566778899aabbccddee%02d", i))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("forged upload: %d", res.StatusCode)
		}
	}

	// C sells offline and is lost with its row; A sells after it.
	d = start(env(termC, "http://127.0.0.1:1"))
	sell(env(termC, "http://127.0.0.1:1"), "1.00")
	d.stop(t, 10*time.Second)
	d = start(env(termID, hostURL))
	sell(env(termID, hostURL), "2.00")
	uploaded(1, 4)
	d.stop(t, 10*time.Second)

	// The checks run after the upload's commit: wait for them.
	want := []string{"the sale's TAC does not verify", "EP purchase (offline) counter", "terminal serial"}
	var open []host.Alarm
	var details []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if open, err = w.host.Alarms(ctx, false); err != nil {
			t.Fatal(err)
		}
		details = details[:0]
		for _, a := range open {
			details = append(details, a.Detail)
		}
		if len(open) >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	time.Sleep(500 * time.Millisecond) // a further alarm would be a fault: give it time to show
	if open, err = w.host.Alarms(ctx, false); err != nil || len(open) != len(want) {
		t.Fatalf("open alarms %q (%v); want one each of %q", details, err, want)
	}
	for i, frag := range want {
		if !strings.Contains(details[i], frag) {
			t.Fatalf("open alarms %q; want one each of %q", details, want)
		}
	}
	if rep, err := w.host.Daily(ctx, day); err != nil || rep.Total.DiffFen != 300 {
		t.Fatalf("the day after the forged sale: %+v %v; want a difference of 3.00", rep.Total, err)
	}
	id := fmt.Sprint(open[0].ID)
	if out := cardhostCLI(t, w.hostDir, "alarms", "ack", id, "--note", "terminal C's secret rotated", "--operator", "wang"); !strings.Contains(out, "acknowledged") {
		t.Fatalf("alarms ack: %s", out)
	}
	if out := cardhostCLI(t, w.hostDir, "alarms"); strings.Count(out, "\n") != 3 || strings.Contains(out, "TAC does not verify") {
		t.Fatalf("open alarms after the acknowledgement:\n%s", out)
	}
}
