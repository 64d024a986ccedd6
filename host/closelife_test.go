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
