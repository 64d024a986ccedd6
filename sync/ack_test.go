package sync_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	gosync "sync"
	"testing"

	"github.com/cardd/cardd/hostapi"
)

// partialAckHost is a host that stores only some rows of an upload and acks
// those only, as a host may when it refuses a row or fails half-way: on the
// first upload it acks every other row, later it acks everything. It
// records the ids of each upload.
type partialAckHost struct {
	mu      gosync.Mutex
	uploads [][]string
}

func (h *partialAckHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != hostapi.PathJournal {
		// Pulls and heartbeats: nothing to say.
		w.Write([]byte("{}"))
		return
	}
	var req hostapi.JournalRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	first := len(h.uploads) == 0
	var sent, acked []string
	for i, row := range req.Rows {
		sent = append(sent, row.ID)
		if !first || i%2 == 0 {
			acked = append(acked, row.ID)
		}
	}
	h.uploads = append(h.uploads, sent)
	h.mu.Unlock()
	json.NewEncoder(w).Encode(hostapi.JournalResponse{Acked: acked})
}

func (h *partialAckHost) upload(i int) ([]string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i >= len(h.uploads) {
		return nil, false
	}
	return h.uploads[i], true
}

// TestSyncerKeepsRowsTheHostDidNotAck: only the ids the host acked are
// marked acked; the others stay queued and go up again, alone, next round
// (money rule 5: rows are kept until acked).
func TestSyncerKeepsRowsTheHostDidNotAck(t *testing.T) {
	h := newTestHost(t, termA) // only for the terminal's secret
	fake := &partialAckHost{}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	tm := newTerminal(t, h, termA, srv.URL)
	tm.journal(t, 6)
	tm.syncer(t, nil)
	waitFor(t, "a second upload", func() bool { _, ok := fake.upload(1); return ok })
	first, _ := fake.upload(0)
	second, _ := fake.upload(1)
	if len(first) != 6 {
		t.Fatalf("first upload sent %v, want the 6 rows", first)
	}
	var unacked []string
	for i, id := range first {
		if i%2 == 1 {
			unacked = append(unacked, id)
		}
	}
	if !slices.Equal(second, unacked) {
		t.Fatalf("second upload sent %v, want only the rows the host did not ack: %v", second, unacked)
	}
	waitFor(t, "queue empty", func() bool { return tm.queueDepth(t) == 0 })
}
