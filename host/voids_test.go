package host

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

func voidRequest(id string, sale hostapi.JournalRow, amount int64) hostapi.VoidRequest {
	return hostapi.VoidRequest{ID: id, Sale: sale, AmountFen: amount, Time: time.Now().Format(time.RFC3339)}
}

// TestVoidRefund: a void whose sale the host has not had yet stores the
// sale and makes one refund credit for its card, tied to the sale and its
// TAC; the same void again answers the same credit; a second void of the
// sale, from this terminal or as another terminal's copy of the same debit,
// makes nothing; the refund loads onto the card as any credit does.
func TestVoidRefund(t *testing.T) { eachStore(t, testVoidRefund) }

func testVoidRefund(t *testing.T) {
	e := newEnv(t, Options{})
	sale := purchaseRow("7")
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
	sale := purchaseRow("7")
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
	sale := purchaseRow("7")
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
