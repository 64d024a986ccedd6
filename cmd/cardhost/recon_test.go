package main

import (
	"bytes"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/money"
)

// signedPost sends body to the host at url as terminal term and decodes
// the answer into out; it must be 200.
func signedPost(t *testing.T, url, term string, secret []byte, path string, body, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(b))
	nonce := make([]byte, 16)
	rand.Read(nonce)
	hostapi.Sign(req, term, secret, b, time.Now(), hex.EncodeToString(nonce))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s as %s: %d", path, term, res.StatusCode)
	}
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReconCommands: a day of a load and purchases at three terminals
// through 'cardhost serve'; 'report daily --csv' settles it with no
// difference and its load sum equal to the ledger's; a forged sale is one
// alarm 'alarms' lists and 'alarms ack' acknowledges with a note, once;
// bad usage changes nothing.
func TestReconCommands(t *testing.T) { eachStore(t, testReconCommands) }

func testReconCommands(t *testing.T) {
	dir, secretFile, cardFile := setup(t)
	terms := []string{"000000000001", "000000000002", "000000000003"}
	secrets := map[string][]byte{}
	for i, term := range terms {
		file := secretFile
		if i > 0 {
			file = filepath.Join(t.TempDir(), "secret")
			wantCode(t, 0, "terminal", "add", "--dir", dir, "--id", term, "--secret-out", file)
		}
		s, err := config.ReadSecretFile(file)
		if err != nil {
			t.Fatal(err)
		}
		secrets[term] = s
	}
	url, stderr, stop := serveInProcess(t, "--dir", dir, "--metrics-listen", "127.0.0.1:0")
	defer stop()
	openAlarms := func() string {
		t.Helper()
		_, addr, ok := strings.Cut(stderr(), "msg=\"serving metrics\" addr=")
		if !ok {
			t.Fatalf("no metrics address logged: %s", stderr())
		}
		res, err := http.Get("http://" + strings.Fields(addr)[0])
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "cardhost_open_alarms "); ok {
				return v
			}
		}
		t.Fatalf("no cardhost_open_alarms in %s", b)
		return ""
	}
	f, err := epursesim.LoadCardFile(cardFile)
	if err != nil {
		t.Fatal(err)
	}
	card := epursesim.NewSimCard(f, "")
	now := time.Now().UTC().Truncate(time.Second)
	at := now.Add(-time.Minute).Format(time.RFC3339)
	day := at[:10]

	// A 20.00 load at terminal 2: authorized, applied, completed, journaled.
	out, _ := wantCode(t, 0, "credit", "add", "--dir", dir, "--card", number, "--amount", "20.00")
	credit := strings.TrimSpace(out)
	if _, err := epurse.Select(card); err != nil {
		t.Fatal(err)
	}
	term2 := [6]byte{0, 0, 0, 0, 0, 2}
	li, err := epurse.InitLoad(card, epurse.PurseEP, 1, 2000, term2)
	if err != nil {
		t.Fatal(err)
	}
	var auth hostapi.LoadAuthorizeResponse
	signedPost(t, url, terms[1], secrets[terms[1]], hostapi.PathLoadAuthorize, hostapi.LoadAuthorizeRequest{CreditID: credit, Card: number, Purse: "EP",
		AmountFen: 2000, OldBalanceFen: li.OldBalance, OnlineCounter: li.OnlineCounter, KeyVersion: li.KeyVersion, AlgID: li.AlgID,
		Random: fmt.Sprintf("%X", li.Random), MAC1: fmt.Sprintf("%X", li.MAC1), Time: now.Format(hostapi.TimeLayout)}, &auth)
	var mac2 [4]byte
	hex.Decode(mac2[:], []byte(auth.MAC2))
	tac, err := epurse.CreditLoad(card, now, mac2)
	if err != nil {
		t.Fatal(err)
	}
	signedPost(t, url, terms[1], secrets[terms[1]], hostapi.PathLoadComplete,
		hostapi.LoadCompleteRequest{CreditID: credit, Card: number, Counter: li.OnlineCounter, TAC: fmt.Sprintf("%X", tac)}, nil)
	load := hostapi.JournalRow{ID: terms[1] + "-1", Kind: "load", State: "done", Card: number, Purse: "EP", Counter: li.OnlineCounter,
		BalanceFen: li.OldBalance, AmountFen: 2000, CreditID: credit, TAC: fmt.Sprintf("%X", tac), Time: at}
	signedPost(t, url, terms[1], secrets[terms[1]], hostapi.PathJournal, hostapi.JournalRequest{Rows: []hostapi.JournalRow{load}}, nil)

	// Sales at terminals 1 and 3, each with its PSAM and the card's TAC.
	psam := [6]byte{0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC}
	balance := li.OldBalance + 2000
	sale := func(term string, seq int, counter uint16, serial uint32, amount int64, forge bool) hostapi.JournalRow {
		when, _ := time.Parse(time.RFC3339, at)
		tac, err := epurse.PurchaseTAC(f.Keys.DTK, amount, epurse.TxEPPurchase, psam, serial, when)
		if err != nil {
			t.Fatal(err)
		}
		if forge {
			tac[0] ^= 0xFF
		}
		r := hostapi.JournalRow{ID: fmt.Sprintf("%s-%d", term, seq), Kind: "purchase", State: "done", Card: number, Purse: "EP",
			Counter: counter, BalanceFen: balance, AmountFen: amount, TAC: fmt.Sprintf("%X", tac), TermSerial: serial,
			PSAMTerminal: "123456789ABC", Time: at}
		balance -= amount
		signedPost(t, url, term, secrets[term], hostapi.PathJournal, hostapi.JournalRequest{Rows: []hostapi.JournalRow{r}}, nil)
		return r
	}
	sale(terms[0], 1, 0, 1, 1250, false)
	sale(terms[0], 2, 1, 2, 800, false)
	sale(terms[2], 1, 2, 3, 350, false)

	report := func() [][]string {
		t.Helper()
		out, _ := wantCode(t, 0, "report", "daily", "--dir", dir, "--date", day, "--csv")
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil || len(recs) != 5 || strings.Join(recs[0], ",") != strings.Join(dailyColumns, ",") {
			t.Fatalf("report daily --csv: %q %v", out, err)
		}
		return recs
	}
	recs := report()
	var ledger host.CardLedger
	out, _ = wantCode(t, 0, "ledger", "--dir", dir, "--card", number, "--json")
	if err := json.Unmarshal([]byte(out), &ledger); err != nil {
		t.Fatal(err)
	}
	var loads, purchases int64
	for _, r := range recs[1:4] {
		l, _ := money.Parse(r[3])
		p, _ := money.Parse(r[6])
		loads, purchases = loads+l, purchases+p
	}
	total := recs[4]
	if total[1] != "TOTAL" || total[3] != money.Format(ledger.LoadedFen) || total[4] != money.Format(ledger.LoadedFen) ||
		money.Format(loads) != total[3] || money.Format(purchases) != total[6] || total[6] != "24.00" || total[9] != "0.00" {
		t.Fatalf("report %q; want loads equal to the ledger's %s, purchases 24.00, no difference", recs, money.Format(ledger.LoadedFen))
	}
	if out, _ := wantCode(t, 0, "report", "daily", "--dir", dir, "--date", day); !strings.Contains(out, "settled: no difference") {
		t.Fatalf("report daily: %s", out)
	}
	if out, _ := wantCode(t, 0, "alarms", "--dir", dir); strings.Count(out, "\n") != 1 {
		t.Fatalf("alarms on a settled day:\n%s", out)
	}

	forged := sale(terms[2], 2, 3, 4, 99, true)
	signedPost(t, url, terms[2], secrets[terms[2]], hostapi.PathJournal, hostapi.JournalRequest{Rows: []hostapi.JournalRow{forged}}, nil)
	if r := report(); r[3][9] != "0.99" || r[4][9] != "0.99" {
		t.Fatalf("after a forged sale: %q", r)
	}
	out, _ = wantCode(t, 0, "alarms", "--dir", dir, "--json")
	var alarms []host.Alarm
	if err := json.Unmarshal([]byte(out), &alarms); err != nil || len(alarms) != 1 || !strings.Contains(alarms[0].Detail, "TAC does not verify") {
		t.Fatalf("alarms after a forged sale sent twice: %s %v", out, err)
	}
	if n := openAlarms(); n != "1" {
		t.Fatalf("cardhost_open_alarms %s; want 1", n)
	}
	id := fmt.Sprint(alarms[0].ID)
	wantCode(t, 2, "alarms", "ack", "--dir", dir, id)                    // no note
	wantCode(t, 2, "alarms", "ack", "--dir", dir, "--note", "x", "9999") // no such alarm
	wantCode(t, 2, "alarms", "ack", "--dir", dir, "--note", "x", "one")  // not an id
	out, _ = wantCode(t, 0, "alarms", "ack", "--dir", dir, id, "--note", "terminal 3 seized", "--operator", "wang")
	if !strings.Contains(out, "acknowledged by operator wang") {
		t.Fatalf("alarms ack: %s", out)
	}
	wantCode(t, 2, "alarms", "ack", "--dir", dir, id, "--note", "again")
	if out, _ := wantCode(t, 0, "alarms", "--dir", dir); strings.Count(out, "\n") != 1 {
		t.Fatalf("open alarms after the acknowledgement:\n%s", out)
	}
	if n := openAlarms(); n != "0" {
		t.Fatalf("cardhost_open_alarms %s after the acknowledgement; want 0", n)
	}
	if out, _ := wantCode(t, 0, "alarms", "--dir", dir, "--all"); !strings.Contains(out, "acknowledged by operator wang") || !strings.Contains(out, "terminal 3 seized") {
		t.Fatalf("alarms --all:\n%s", out)
	}
	wantCode(t, 2, "report", "daily", "--dir", dir)
	if _, errOut := wantCode(t, 2, "serve", "--dir", dir, "--metrics-listen", "nowhere"); !strings.Contains(errOut, `--metrics-listen = "nowhere"`) {
		t.Fatalf("serve --metrics-listen nowhere: %s", errOut)
	}
	wantCode(t, 2, "report", "daily", "--dir", dir, "--date", "4.12.2026")
	reportMerchants(t, dir, day, terms)
}

// reportMerchants: with terminals 1 and 3 at one merchant and 2 at none,
// 'report daily --csv' adds a row per merchant before the total, their
// sums equal to the total's; bad names and unknown terminals are exit 2.
func reportMerchants(t *testing.T, dir, day string, terms []string) {
	t.Helper()
	wantCode(t, 2, "terminal", "merchant", "--dir", dir, "--id", terms[0])
	wantCode(t, 2, "terminal", "merchant", "--dir", dir, "--id", terms[0], "--set", " padded")
	wantCode(t, 2, "terminal", "merchant", "--dir", dir, "--id", "0000000000FF", "--set", "x")
	for _, term := range []string{terms[0], terms[2]} {
		wantCode(t, 0, "terminal", "merchant", "--dir", dir, "--id", term, "--set", "一食堂")
	}
	if out, _ := wantCode(t, 0, "terminal", "list", "--dir", dir); strings.Count(out, "一食堂") != 2 {
		t.Fatalf("terminal list:\n%s", out)
	}
	out, _ := wantCode(t, 0, "report", "daily", "--dir", dir, "--date", day, "--csv")
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) != 7 || recs[1][10] != "一食堂" || recs[2][10] != "" {
		t.Fatalf("report daily --csv with merchants: %q %v", recs, err)
	}
	total := recs[6]
	for col := 2; col <= 9; col++ {
		var sum int64
		for _, r := range recs[4:6] {
			if r[1] != "MERCHANT" {
				t.Fatalf("row %q; want a merchant's", r)
			}
			v, err := money.Parse(r[col])
			if err != nil {
				v, _ = strconv.ParseInt(r[col], 10, 64)
			}
			sum += v
		}
		want, err := money.Parse(total[col])
		if err != nil {
			want, _ = strconv.ParseInt(total[col], 10, 64)
		}
		if sum != want {
			t.Fatalf("column %s: merchants sum to %d, the total is %s: %q", dailyColumns[col], sum, total[col], recs)
		}
	}
	if recs[4][10] != "(none)" || recs[5][10] != "一食堂" || recs[5][6] != "24.99" {
		t.Fatalf("merchant rows %q", recs[4:6])
	}
	out, _ = wantCode(t, 0, "report", "daily", "--dir", dir, "--date", day)
	if !strings.Contains(out, "per terminal and merchant") || !strings.Contains(out, "一食堂") {
		t.Fatalf("report daily with merchants:\n%s", out)
	}
}
