package host

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/hostapi"
)

// challenge selects the card and asks it for a challenge, as the terminal
// does before it asks for the block's MAC.
func (e *env) challenge() [epurse.ChallengeLen]byte {
	e.t.Helper()
	e.card.Reset()
	if _, err := epurse.Select(e.card); err != nil {
		e.t.Fatalf("select: %v", err)
	}
	ch, err := epurse.GetChallenge(e.card)
	if err != nil {
		e.t.Fatal(err)
	}
	return ch
}

func blockRequest(ch [epurse.ChallengeLen]byte) hostapi.CardBlockRequest {
	return hostapi.CardBlockRequest{Card: testNumber, Challenge: hex.EncodeToString(ch[:])}
}

func TestCardBlock(t *testing.T) { eachStore(t, testCardBlock) }

func testCardBlock(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()

	// Not denied: refused with the reason, nothing in the ledger, and the
	// card never gets a MAC it would take.
	e.wantRefusal(hostapi.PathCardBlock, blockRequest(e.challenge()), http.StatusConflict, hostapi.CodeCardNotDenied)
	if n := e.count("ledger", "event = ?", EventChipBlock); n != 0 {
		t.Fatalf("%d chip blocks recorded for a card not denied", n)
	}
	e.wantRefusal(hostapi.PathCardBlock, hostapi.CardBlockRequest{Card: testNumber, Challenge: "0102"}, http.StatusBadRequest, hostapi.CodeBadRequest)
	e.wantRefusal(hostapi.PathCardBlock, hostapi.CardBlockRequest{Card: "12", Challenge: "01020304"}, http.StatusBadRequest, hostapi.CodeBadRequest)

	if _, err := e.st.Deny(ctx, testNumber, "lost", "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	other := "3101000000999999"
	if _, err := e.st.Deny(ctx, other, "lost", "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	e.wantRefusal(hostapi.PathCardBlock, hostapi.CardBlockRequest{Card: other, Challenge: "01020304"}, http.StatusNotFound, hostapi.CodeNotFound)

	// Denied: the MAC blocks the card.
	ch := e.challenge()
	var resp hostapi.CardBlockResponse
	e.mustCall(hostapi.PathCardBlock, blockRequest(ch), &resp)
	if resp.Mode != hostapi.BlockTemporary || resp.Reason != "lost" {
		t.Fatalf("response %+v", resp)
	}
	var mac [4]byte
	if b, err := hex.DecodeString(resp.MAC); err != nil || copy(mac[:], b) != 4 {
		t.Fatalf("MAC %q", resp.MAC)
	}
	if err := epurse.ApplicationBlock(e.card, epurse.BlockTemporary, mac); err != nil {
		t.Fatalf("the card refused the host's MAC: %v", err)
	}
	e.card.Reset()
	if _, err := epurse.Select(e.card); !errors.Is(err, epurse.ErrApplicationBlocked) {
		t.Fatalf("select after the block: %v", err)
	}
	if n := e.count("ledger", "event = ? AND card = ? AND actor = ?", EventChipBlock, testNumber, terminalActor(testTerm)); n != 1 {
		t.Fatalf("%d chip blocks in the ledger, want 1", n)
	}

	// The same signed request again is a replay: refused by the nonce rule.
	body, _ := json.Marshal(blockRequest(ch))
	nonce := newNonce()
	now := time.Now()
	if status, b := e.send(e.signedRaw(hostapi.PathCardBlock, body, testTerm, e.secret, now, nonce)); status != http.StatusOK {
		t.Fatalf("first send: %d %s", status, b)
	}
	e.wantUnauthorized(e.signedRaw(hostapi.PathCardBlock, body, testTerm, e.secret, now, nonce), "replayed")
	if n := e.count("ledger", "event = ?", EventChipBlock); n != 2 {
		t.Fatalf("%d chip blocks in the ledger, want 2 (the replay is not one)", n)
	}
}

func TestCardBlockWithoutMaintenanceKey(t *testing.T) {
	eachStore(t, testCardBlockWithoutMaintenanceKey)
}

// A key file from before the maintenance key: loads go on, blocking is
// refused with the reason.
func testCardBlockWithoutMaintenanceKey(t *testing.T) {
	e := newEnv(t, Options{})
	m := e.masters
	m.DAMK = epurse.Key16{}
	keys, err := NewKeys(m)
	if err != nil {
		t.Fatalf("a key file without damk is refused: %v", err)
	}
	e.keys = keys
	e.restart()
	if _, err := e.st.Deny(context.Background(), testNumber, "lost", "operator test", time.Now()); err != nil {
		t.Fatal(err)
	}
	e.wantRefusal(hostapi.PathCardBlock, blockRequest(e.challenge()), http.StatusServiceUnavailable, hostapi.CodeNoMaintenanceKey)
	if n := e.count("ledger", "event = ?", EventChipBlock); n != 0 {
		t.Fatalf("%d chip blocks recorded without a key", n)
	}
	if _, err := epurse.GetBalance(e.card, epurse.PurseEP); errors.Is(err, apdu.ErrNotSupported) {
		t.Fatal("the card is blocked")
	}
}
