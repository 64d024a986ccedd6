package host

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
)

// testPSAM is the terminal id of the PSAM the test sales are made at.
var testPSAM = [6]byte{0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC}

const testPSAMHex = "123456789ABC"

func voidRequest(id string, sale hostapi.JournalRow, amount int64) hostapi.VoidRequest {
	return hostapi.VoidRequest{ID: id, Sale: sale, PSAMTerminal: testPSAMHex, AmountFen: amount, Time: time.Now().Format(time.RFC3339)}
}

// proved is sale with the TAC the card gives for it at testPSAM: made with
// the DTK in the card's own file (its chip's key), at the wall clock of the
// row's time, as the card does for DEBIT FOR PURCHASE.
func (e *env) proved(sale hostapi.JournalRow) hostapi.JournalRow {
	e.t.Helper()
	when, err := time.Parse(time.RFC3339, sale.Time)
	if err != nil {
		e.t.Fatal(err)
	}
	tx := epurse.TxEPPurchase
	if sale.Purse == "ED" {
		tx = epurse.TxEDPurchase
	}
	tac, err := epurse.PurchaseTAC(e.card.File().Keys.DTK, sale.AmountFen, tx, testPSAM, sale.TermSerial, when)
	if err != nil {
		e.t.Fatal(err)
	}
	sale.TAC = fmt.Sprintf("%X", tac)
	return sale
}

// TestVoidRefund: a void whose sale the host has not had yet stores the
// sale and makes one refund credit for its card, tied to the sale and its
// TAC; the same void again answers the same credit; a second void of the
// sale, from this terminal or as another terminal's copy of the same debit,
// makes nothing; the refund loads onto the card as any credit does.
func TestVoidRefund(t *testing.T) { eachStore(t, testVoidRefund) }

func testVoidRefund(t *testing.T) {
	e := newEnv(t, Options{})
	sale := e.proved(purchaseRow("7"))
	var resp hostapi.VoidResponse
	e.mustCall(hostapi.PathVoid, voidRequest(testTerm+"-V1", sale, 1250), &resp)
	c := resp.Credit
	if c.Card != testNumber || c.AmountFen != 1250 || c.State != hostapi.CreditPending || !strings.Contains(c.Note, sale.ID) || !strings.Contains(c.Note, sale.TAC) {
		t.Fatalf("refund %+v; want a pending credit of 12.50 for the card naming sale %s and TAC %s", c, sale.ID, sale.TAC)
	}
	if got := e.storedJournal(sale.ID); got.State != "done" || got.TAC != sale.TAC {
		t.Fatalf("the void's sale was not stored: %+v", got)
	}
	// The sale's own upload, arriving after, is the same copy: acked.
	if up := e.upload(sale); len(up.Acked) != 1 {
		t.Fatalf("sale uploaded after its void: %+v", up)
	}
	var again hostapi.VoidResponse
	e.mustCall(hostapi.PathVoid, voidRequest(testTerm+"-V1", sale, 1250), &again)
	if again.Credit.ID != c.ID {
		t.Fatalf("the same void again answered credit %s, first %s", again.Credit.ID, c.ID)
	}
	e.wantRefusal(hostapi.PathVoid, voidRequest(testTerm+"-V2", sale, 100), http.StatusConflict, hostapi.CodeSaleVoided)
	// Another terminal's row of the same debit (card, purse, counter).
	secretB := e.addTerminalB()
	copyB := sale
	copyB.ID = testTermB + "-3"
	status, b := e.send(e.signed(hostapi.PathVoid, voidRequest(testTermB+"-V1", copyB, 1250), testTermB, secretB, time.Now()))
	var apiErr hostapi.Error
	json.Unmarshal(b, &apiErr)
	if status != http.StatusConflict || apiErr.Code != hostapi.CodeSaleVoided {
		t.Fatalf("a copy of the debit at terminal B: %d %s; want 409 %s", status, b, hostapi.CodeSaleVoided)
	}
	if n := e.count("credits", "card = ? AND note LIKE 'refund%'", testNumber); n != 1 {
		t.Fatalf("%d refund credits; want 1", n)
	}
	if n := e.count("ledger", "event = ? AND card = ?", EventRefund, testNumber); n != 1 {
		t.Fatalf("%d refund ledger entries; want 1", n)
	}
	refunds, err := e.st.Refunds(t.Context(), testNumber)
	if err != nil || len(refunds) != 1 || refunds[0].SaleID != sale.ID || refunds[0].SaleTAC != sale.TAC || refunds[0].Credit != c.ID {
		t.Fatalf("Refunds: %+v %v", refunds, err)
	}
	// An ordinary credit: MAC2, CREDIT FOR LOAD, TAC, consumed.
	before := e.balance()
	li, auth := e.authorize(c.ID, c.AmountFen)
	tac := e.credit(auth)
	var done hostapi.LoadCompleteResponse
	e.mustCall(hostapi.PathLoadComplete, tacRequest(c.ID, li.OnlineCounter, tac), &done)
	if done.State != hostapi.CreditConsumed || e.balance() != before+1250 {
		t.Fatalf("refund load: %s, balance %d → %d; want consumed, +1250", done.State, before, e.balance())
	}
}

// TestVoidRefusals: a refund above the sale, a sale held failed, a sale
// held otherwise than the void says and a malformed void are refused, and
// make no credit.
func TestVoidRefusals(t *testing.T) { eachStore(t, testVoidRefusals) }

func testVoidRefusals(t *testing.T) {
	e := newEnv(t, Options{})
	sale := e.proved(purchaseRow("7"))
	e.upload(sale)
	e.wantRefusal(hostapi.PathVoid, voidRequest(testTerm+"-V1", sale, 1251), http.StatusConflict, hostapi.CodeNotVoidable)
	changed := sale
	changed.AmountFen = 2000
	e.wantRefusal(hostapi.PathVoid, voidRequest(testTerm+"-V1", changed, 2000), http.StatusConflict, hostapi.CodeRowSettled)
	failed := purchaseRow("8")
	failed.State, failed.TAC = "failed", ""
	e.upload(failed)
	e.wantRefusal(hostapi.PathVoid, voidRequest(testTerm+"-V2", failed, 100), http.StatusConflict, hostapi.CodeNotVoidable)
	load := purchaseRow("9")
	load.Kind, load.CreditID, load.TermSerial = "load", "cr-x", 0
	e.wantRefusal(hostapi.PathVoid, voidRequest(testTerm+"-V3", load, 100), http.StatusConflict, hostapi.CodeNotVoidable)
	for _, req := range []hostapi.VoidRequest{
		voidRequest("", sale, 100),
		voidRequest(testTerm+"-V4", sale, 0),
		{ID: testTerm + "-V4", Sale: sale, AmountFen: 100, Time: "now"},
	} {
		e.wantRefusal(hostapi.PathVoid, req, http.StatusBadRequest, hostapi.CodeBadRequest)
	}
	// The same void id for another sale.
	var resp hostapi.VoidResponse
	e.mustCall(hostapi.PathVoid, voidRequest(testTerm+"-V5", sale, 1250), &resp)
	other := purchaseRow("10")
	other.Counter = 8
	e.wantRefusal(hostapi.PathVoid, voidRequest(testTerm+"-V5", other, 100), http.StatusConflict, hostapi.CodeNotVoidable)
	if n := e.count("credits", "note LIKE 'refund%'"); n != 1 {
		t.Fatalf("%d refund credits after refusals; want 1", n)
	}
}

// TestVoidRace: voids of one sale sent at once, each with its own id, make
// one refund; the others are refused sale_voided.
func TestVoidRace(t *testing.T) { eachStore(t, testVoidRace) }

func testVoidRace(t *testing.T) {
	e := newEnv(t, Options{})
	sale := e.proved(purchaseRow("7"))
	const n = 6
	codes := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			status, b := e.send(e.signed(hostapi.PathVoid, voidRequest(fmt.Sprintf("%s-V%d", testTerm, i+1), sale, 1250), testTerm, e.secret, time.Now()))
			var apiErr hostapi.Error
			json.Unmarshal(b, &apiErr)
			codes[i] = fmt.Sprint(status, apiErr.Code)
		})
	}
	wg.Wait()
	made := 0
	for _, c := range codes {
		switch c {
		case "200":
			made++
		case "409" + hostapi.CodeSaleVoided:
		default:
			t.Errorf("a racing void answered %s", c)
		}
	}
	if made != 1 || e.count("credits", "note LIKE 'refund%'") != 1 || e.count("refunds", "TRUE") != 1 {
		t.Fatalf("answers %v: %d refunds made; want 1", codes, made)
	}
}

// TestVoidProof: the host refunds only a sale the card's TAC proves. A
// sale with a made-up TAC (what a terminal with a stolen secret would send)
// is refused not_voidable, makes nothing and is one alarm in the card's
// ledger however often it is sent; so is a real sale's TAC claimed at
// another PSAM. A real sale is refunded; the same proved debit sent again
// as another row (the TAC does not cover the counter) is refunded no
// second time. A sale the host cannot prove (an M1 wallet's, one without
// TAC, one voided without its PSAM's id) is refused without an alarm; a
// card the host did not issue is refused not_found.
func TestVoidProof(t *testing.T) { eachStore(t, testVoidProof) }

func testVoidProof(t *testing.T) {
	e := newEnv(t, Options{})
	// The TAC's alarms: the forged sale's amount also leaves the card's
	// books unbalanced, the reconciliation's own alarm.
	alarms := func() int {
		return e.count("ledger", "event = ? AND card = ? AND actor <> ?", EventAlarm, testNumber, reconActor)
	}
	nothingMade := func(when string) {
		t.Helper()
		if n := e.count("credits", "note LIKE 'refund%'") + e.count("refunds", "TRUE"); n != 0 {
			t.Fatalf("%s: %d refund credits and rows; want none", when, n)
		}
	}

	forged := purchaseRow("7")
	forged.AmountFen = 50000
	if forged.TAC == e.proved(forged).TAC {
		t.Fatal("the test's made-up TAC is the card's")
	}
	for range 2 {
		apiErr := e.wantRefusal(hostapi.PathVoid, voidRequest(testTerm+"-V1", forged, 50000), http.StatusConflict, hostapi.CodeNotVoidable)
		if !strings.Contains(apiErr.Reason, "the sale's TAC does not verify") {
			t.Fatalf("forged sale refused with %q; want the TAC named", apiErr.Reason)
		}
	}
	nothingMade("a forged sale")
	if n := alarms(); n != 1 {
		t.Fatalf("%d alarms in the ledger after a forged sale sent twice; want 1", n)
	}

	// A real sale's TAC, claimed at another PSAM.
	real := e.proved(purchaseRow("8"))
	real.Counter = 8
	elsewhere := voidRequest(testTerm+"-V2", real, 1250)
	elsewhere.PSAMTerminal = "000000000001"
	e.wantRefusal(hostapi.PathVoid, elsewhere, http.StatusConflict, hostapi.CodeNotVoidable)
	nothingMade("a real TAC at another PSAM")
	if n := alarms(); n != 2 {
		t.Fatalf("%d alarms; want 2", n)
	}

	// Sales the host cannot prove: refused, not an alarm.
	oldSale := voidRequest(testTerm+"-V3", real, 1250)
	oldSale.PSAMTerminal = ""
	if apiErr := e.wantRefusal(hostapi.PathVoid, oldSale, http.StatusConflict, hostapi.CodeNotVoidable); !strings.Contains(apiErr.Reason, "PSAM terminal id") {
		t.Fatalf("a void without the PSAM's id: %q", apiErr.Reason)
	}
	noTAC := purchaseRow("9")
	noTAC.Counter, noTAC.TAC = 9, ""
	e.wantRefusal(hostapi.PathVoid, voidRequest(testTerm+"-V4", noTAC, 100), http.StatusConflict, hostapi.CodeNotVoidable)
	m1 := purchaseRow("10")
	m1.Purse, m1.TAC, m1.TermSerial = hostapi.PurseM1, "", 0
	if apiErr := e.wantRefusal(hostapi.PathVoid, voidRequest(testTerm+"-V5", m1, 100), http.StatusConflict, hostapi.CodeNotVoidable); !strings.Contains(apiErr.Reason, "no proof") {
		t.Fatalf("an M1 sale: %q", apiErr.Reason)
	}
	stranger := purchaseRow("11")
	stranger.Card = "3101000000999999"
	e.wantRefusal(hostapi.PathVoid, voidRequest(testTerm+"-V6", e.proved(stranger), 100), http.StatusNotFound, hostapi.CodeNotFound)
	bad := voidRequest(testTerm+"-V7", real, 1250)
	bad.PSAMTerminal = "12345"
	e.wantRefusal(hostapi.PathVoid, bad, http.StatusBadRequest, hostapi.CodeBadRequest)
	nothingMade("unprovable sales")
	if n := alarms(); n != 2 {
		t.Fatalf("%d alarms after unprovable sales; want still 2", n)
	}

	// The real sale is refunded, once.
	var resp hostapi.VoidResponse
	e.mustCall(hostapi.PathVoid, voidRequest(testTerm+"-V8", real, 1250), &resp)
	if resp.Credit.AmountFen != 1250 || resp.Credit.Card != testNumber {
		t.Fatalf("the real sale's refund: %+v", resp.Credit)
	}
	replay := real
	replay.ID, replay.Counter = testTerm+"-12", 12
	e.wantRefusal(hostapi.PathVoid, voidRequest(testTerm+"-V9", replay, 1250), http.StatusConflict, hostapi.CodeSaleVoided)
	if n := e.count("credits", "note LIKE 'refund%'"); n != 1 {
		t.Fatalf("%d refund credits; want the real sale's one", n)
	}
}
