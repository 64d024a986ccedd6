package sync

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	gosync "sync"
	"testing"

	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
)

// TestHeartbeatUnreadableQueue: a terminal that cannot read its own
// journal's queue depth does not tell the host its queue is empty. The
// host takes queue_depth 0 as proof the terminal holds no row it lacks
// (a lost card's replacement settles early on it), so a heartbeat that
// claimed it with rows still owed would carry a balance the rows then
// take off.
func TestHeartbeatUnreadableQueue(t *testing.T) {
	var mu gosync.Mutex
	var depths []int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var hb hostapi.HeartbeatRequest
		if r.URL.Path == hostapi.PathHeartbeat && json.Unmarshal(body, &hb) == nil {
			mu.Lock()
			depths = append(depths, hb.QueueDepth)
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"time":"2026-12-04T10:00:00Z"}`)
	}))
	defer srv.Close()
	st, err := offline.Open(filepath.Join(t.TempDir(), "cardd.db"), "000000000001")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Begin(context.Background(), offline.Row{Kind: offline.KindRead, State: offline.StateDone, Card: "3101000000123456",
		Purse: "EP", Time: "20261204100000"}); err != nil {
		t.Fatal(err)
	}
	st.Close() // the journal can no longer be read
	s := &Syncer{Client: &Client{BaseURL: srv.URL, TerminalID: "000000000001", Secret: []byte("0123456789abcdef0123456789abcdef")}, Store: st}
	if _, err := s.heartbeatOnce(context.Background()); err == nil {
		t.Error("heartbeat with an unreadable queue: no error")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, d := range depths {
		if d == 0 {
			t.Fatalf("the host was told queue_depth 0 by a terminal that could not read its queue (heartbeats: %v)", depths)
		}
	}
}
