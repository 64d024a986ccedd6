package host

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cardd/cardd/hostapi"
)

func TestClosedCardStaysDenied(t *testing.T) { eachStore(t, testClosedCardStaysDenied) }

// testClosedCardStaysDenied: a closed card's balance is owed back as a
// refund; lifting its deny would put it back in service while the refund
// is still due (and every terminal that pulled its close would debit it
// again as a closing debit). Undeny refuses it and it stays denied.
func testClosedCardStaysDenied(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	if _, err := e.st.CloseCard(ctx, testNumber, "operator alice", "graduated", time.Now()); err != nil {
		t.Fatal(err)
	}
	debit := e.sale("1", 0, 1, 10000, 10000, 1)
	debit.CreditID = hostapi.CloseID(testNumber)
	if up := e.upload(debit); len(up.Acked) != 1 {
		t.Fatalf("upload: %+v", up)
	}
	err := e.st.Undeny(ctx, testNumber, "operator bob", time.Now())
	if !errors.Is(err, ErrClosedCard) {
		t.Fatalf("undeny of a closed card: %v; want ErrClosedCard", err)
	}
	if denied, reason, _ := denyState(e.st.db, testNumber); !denied || reason != DenyReasonClosed {
		t.Fatalf("deny %v %q after the refused undeny; want closed", denied, reason)
	}
}

func TestCloseWaitsForReplacement(t *testing.T) { eachStore(t, testCloseWaitsForReplacement) }

// testCloseWaitsForReplacement: the new card of a replacement still
// settling is owed the lost card's balance as a credit that does not exist
// yet; closing it now would leave that credit, made at the settlement,
// pending on a closed card that no terminal serves, outside the refund
// due. The close is refused, and nothing changes.
func testCloseWaitsForReplacement(t *testing.T) {
	e := newEnv(t, Options{})
	e.lostCard83()
	var refused *CloseRefusedError
	if _, err := e.st.CloseCard(e.t.Context(), testNewNumber, "operator alice", "left", time.Now()); !errors.As(err, &refused) {
		t.Fatalf("closing the new card of a replacement still settling: %v; want refused", err)
	}
	if n := e.count("closes", "card = ?", testNewNumber); n != 0 {
		t.Fatalf("%d closes of the new card after the refusal", n)
	}
}
