package sync_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/epurse"
	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/hostapi"
)

// TestAuthorizeLoadDecodesOtherCredits: through the real host's handler,
// the client's AuthorizeLoad gives the card's other pending credits as the
// card-credits call gives them, and none of another card's.
func TestAuthorizeLoadDecodesOtherCredits(t *testing.T) {
	h := newTestHost(t, termA)
	srv := httptest.NewServer(h.handler)
	t.Cleanup(srv.Close)
	const number, other = "3101000000700003", "3101000000700004"
	card := h.issue(t, number, 10000)
	h.issue(t, other, 0)
	first := h.credit(t, number, 1000, "wechat")
	h.credit(t, other, 500, "")
	h.credit(t, number, 2000, "subsidy")
	ctx := context.Background()
	a := newTerminal(t, h, termA, srv.URL)

	resp, err := authorizeOnCard(t, card, a, number, first, [6]byte{0, 0, 0, 0, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := a.client.CardCredits(ctx, number)
	if err != nil {
		t.Fatal(err)
	}
	if len(cc.Credits) != 2 || cc.Credits[0].ID != first.ID {
		t.Fatalf("card credits %+v, want the authorized one and the second", cc.Credits)
	}
	if !reflect.DeepEqual(resp.Credits, cc.Credits[1:]) || resp.Credits[0].AmountFen != 2000 || resp.Credits[0].Note != "subsidy" {
		t.Fatalf("authorization's credits %+v, want %+v", resp.Credits, cc.Credits[1:])
	}
}

// authorizeOnCard runs INITIALIZE FOR LOAD of credit c on the card as the
// terminal with id termID, and asks the host for MAC2 as terminal tm.
func authorizeOnCard(t *testing.T, card *epursesim.SimCard, tm *terminal, number string, c hostapi.Credit, termID [6]byte) (hostapi.LoadAuthorizeResponse, error) {
	t.Helper()
	card.Reset()
	if _, err := epurse.Select(card); err != nil {
		t.Fatal(err)
	}
	li, err := epurse.InitLoad(card, epurse.PurseEP, 1, c.AmountFen, termID)
	if err != nil {
		t.Fatal(err)
	}
	hexU := func(b []byte) string { return fmt.Sprintf("%X", b) }
	return tm.client.AuthorizeLoad(context.Background(), hostapi.LoadAuthorizeRequest{CreditID: c.ID, Card: number, Purse: "EP", AmountFen: c.AmountFen,
		OldBalanceFen: li.OldBalance, OnlineCounter: li.OnlineCounter, KeyVersion: li.KeyVersion, AlgID: li.AlgID,
		Random: hexU(li.Random[:]), MAC1: hexU(li.MAC1[:]), Time: time.Now().Format(hostapi.TimeLayout)})
}
