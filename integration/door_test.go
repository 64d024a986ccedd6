package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardd/cardd/apdu/mifare"
	mifaresim "github.com/cardd/cardd/apdu/mifare/sim"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/internal/pty"
	"github.com/cardd/cardd/reader/vpcd"
)

// relayBoard is a relay board on a pty: cardd opens the slave side through
// a link, the test reads the master side.
type relayBoard struct {
	mu  sync.Mutex
	got []byte
	at  []time.Time
}

func newRelayBoard(t *testing.T, link string) *relayBoard {
	t.Helper()
	master, slave, path, err := pty.Open()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("relay board on a pty: %v", err)
		}
		t.Skipf("no pty: %v", err)
	}
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	b := &relayBoard{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				b.mu.Lock()
				for range n {
					b.at = append(b.at, time.Now())
				}
				b.got = append(b.got, buf[:n]...)
				b.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { master.Close(); slave.Close(); <-done })
	return b
}

// bytesSince returns what arrived since index from, with arrival times.
func (b *relayBoard) bytesSince(from int) ([]byte, []time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.got[from:]), append([]time.Time(nil), b.at[from:]...)
}

func (b *relayBoard) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.got)
}

var (
	relayOpen  = []byte{0xA0, 0x01, 0x01, 0xA2}
	relayClose = []byte{0xA0, 0x01, 0x00, 0xA1}
)

// TestDoorDecidesOffline runs `cardd run` in door mode with a relay board
// on a pty. The access list and the deny list are pulled from the host,
// then the host goes down: an allowed e-purse card and an allowed UID card
// (MIFARE Classic, no e-purse) open the relay, which closes after the hold;
// a card of a group this door does not admit, an expired entry, one outside
// its hours, a deny-listed card, a UID card deny-listed by its UID and an
// unknown card do not. Every decision is journaled and reaches the host once
// it is back (9 decisions: the 8 offline and one more tap after the host's
// return).
func TestDoorDecidesOffline(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	h := &restartableHost{w: w}
	h.start(t)
	ctx := context.Background()
	cards := map[string]string{}
	for _, n := range []string{"3101000000900001", "3101000000900002", "3101000000900003", "3101000000900004", "3101000000900005", "3101000000900006"} {
		cards[n] = w.issue(t, n, 1000)
	}
	now := time.Now()
	yesterday := now.AddDate(0, 0, -1).Format("2006-01-02")
	// A window that is certainly not now: from one hour ahead, for an hour.
	later, end := now.Add(time.Hour).Format("15:04"), now.Add(2*time.Hour).Format("15:04")
	all := []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
	list := map[string]any{
		"version": "test-1",
		"groups": []map[string]any{
			{"name": "residents", "windows": []map[string]any{{"days": all, "from": "00:00", "until": "24:00"}}},
			{"name": "cleaners", "windows": []map[string]any{{"days": all, "from": "00:00", "until": "24:00"}}},
			{"name": "night", "windows": []map[string]any{{"days": all, "from": later, "until": end}}},
		},
		"entries": []map[string]any{
			{"card": "3101000000900001", "groups": []string{"residents"}},
			{"card": "3101000000900002", "groups": []string{"cleaners"}},
			{"card": "3101000000900003", "groups": []string{"residents"}, "valid_until": yesterday},
			{"card": "3101000000900004", "groups": []string{"night"}},
			{"card": "3101000000900005", "groups": []string{"residents"}},
			{"uid": "04A1B2C3", "groups": []string{"residents"}},
			{"uid": "04D1E2F3", "groups": []string{"residents"}}, // lost: denied by its UID
			// A T-Union card's 19 digits go on the list and the deny list
			// and reach the door as written.
			{"card": "3104990600000000006", "groups": []string{"residents"}},
		},
	}
	body, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.host.SetAccessList(ctx, body, "test", now); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"3101000000900005", "uid:04D1E2F3", "3104990600000000013"} {
		if _, err := w.host.Deny(ctx, id, "lost", "test", now); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	secretFile := w.secretFile(t, dir)
	link := filepath.Join(dir, "relay")
	board := newRelayBoard(t, link)
	storePath := filepath.Join(dir, "cardd.db")
	env := []string{"CARDD_MODE=door", "CARDD_HOST_URL=http://" + h.addr, "CARDD_HOST_SECRET_FILE=" + secretFile,
		"CARDD_STORE_PATH=" + storePath, "CARDD_TERMINAL_ID=" + termID,
		"CARDD_DOOR_GROUPS=residents,night", "CARDD_DOOR_RELAY_PORT=" + link, "CARDD_DOOR_RELAY_HOLD=300ms"}
	waitEmpty(t, 0)
	d := startDaemon(t, env...)
	d.waitLine(t, "access list in force", 15*time.Second, func(m map[string]any) bool { return m["msg"] == "access list in force" })
	store := sqlOpen(t, storePath)
	deadline := time.Now().Add(15 * time.Second)
	for {
		var n int
		if err := store.QueryRow(`SELECT count(*) FROM deny WHERE card IN ('3101000000900005', 'uid:04D1E2F3', '3104990600000000013')`).Scan(&n); err == nil && n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deny list did not reach the terminal")
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.stop(t) // from here the door decides offline

	tapDoor := func(insertCard func() *inserted) map[string]any {
		t.Helper()
		in := insertCard()
		m := d.waitLine(t, "tap", 15*time.Second, func(m map[string]any) bool { return m["msg"] == "tap" })
		in.remove(t)
		return m
	}
	epurseCard := func(n string) func() *inserted {
		return func() *inserted { return insert(t, cards[n], 0, vpcd.Options{}) }
	}
	for _, c := range []struct {
		name, number, want string
	}{
		{"resident", "3101000000900001", "allowed"},
		{"cleaner at a residents' door", "3101000000900002", "group_not_allowed"},
		{"expired entry", "3101000000900003", "expired"},
		{"night group by day", "3101000000900004", "outside_hours"},
		{"lost card", "3101000000900005", "deny_listed"},
		{"not on the list", "3101000000900006", "unknown_card"},
	} {
		before := board.len()
		m := tapDoor(epurseCard(c.number))
		if m["door"] != c.want {
			t.Errorf("%s: door %v (outcome %v, %v), want %s", c.name, m["door"], m["outcome"], m["door_text"], c.want)
		}
		if strings.Contains(m["door_card"].(string), c.number) {
			t.Errorf("%s: the log shows the whole card number", c.name)
		}
		checkRelay(t, c.name, board, before, c.want == "allowed")
	}

	// MIFARE Classic cards without the e-purse, listed by their UIDs; the
	// second is deny-listed by its UID.
	uidCard := func(uid [4]byte) func() *inserted {
		f, err := mifaresim.NewCardFile(uid, mifare.Wallet{Sector: 1, ValueBlock: 4, BackupBlock: 5,
			KeyA: mifare.Key{1, 2, 3, 4, 5, 6}, KeyB: mifare.Key{6, 5, 4, 3, 2, 1}, Slots: mifare.KeySlotsACS}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return func() *inserted { return insertSim(t, mifaresim.NewSimCard(f, ""), 0, vpcd.Options{}) }
	}
	before := board.len()
	m := tapDoor(uidCard([4]byte{0x04, 0xA1, 0xB2, 0xC3}))
	if m["door"] != "allowed" || m["outcome"] != "ok" {
		t.Errorf("UID card: %v", m)
	}
	checkRelay(t, "UID card", board, before, true)
	before = board.len()
	if m := tapDoor(uidCard([4]byte{0x04, 0xD1, 0xE2, 0xF3})); m["door"] != "deny_listed" {
		t.Errorf("UID card deny-listed by its UID: door %v (%v)", m["door"], m["door_text"])
	}
	checkRelay(t, "UID card deny-listed", board, before, false)

	// The host comes back: every decision arrives, once. The upload loop
	// may be in a long backoff; the next tap wakes it, as at a busy door.
	h.start(t)
	before = board.len()
	if m := tapDoor(epurseCard("3101000000900001")); m["door"] != "allowed" {
		t.Errorf("resident after the host came back: %v", m["door"])
	}
	checkRelay(t, "resident again", board, before, true)
	hostDB := sqlOpen(t, filepath.Join(w.hostDir, host.DBFile))
	deadline = time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := hostDB.QueryRow(`SELECT count(*) FROM journal WHERE kind = 'access'`).Scan(&n); err == nil && n == 9 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("host holds %d door decisions (%v), want 9", n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var denied int
	if err := hostDB.QueryRow(`SELECT count(*) FROM journal WHERE kind = 'access' AND detail LIKE 'deny_listed:%'`).Scan(&denied); err != nil || denied != 2 {
		t.Errorf("host holds %d deny_listed decisions (%v), want 2", denied, err)
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	if err := <-d.exit; err != nil {
		t.Fatalf("cardd exited with %v", err)
	}
}

// checkRelay asserts what the relay board got since before: the open bytes
// then the close bytes no sooner than the hold after them when allowed, and
// nothing otherwise.
func checkRelay(t *testing.T, name string, b *relayBoard, before int, allowed bool) {
	t.Helper()
	if !allowed {
		time.Sleep(500 * time.Millisecond) // longer than a hold
		if got, _ := b.bytesSince(before); len(got) != 0 {
			t.Errorf("%s: the relay got % X, want nothing", name, got)
		}
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, at := b.bytesSince(before)
		if len(got) >= 8 {
			if !bytes.Equal(got[:4], relayOpen) || !bytes.Equal(got[4:8], relayClose) {
				t.Errorf("%s: the relay got % X, want open then close", name, got)
			} else if held := at[4].Sub(at[3]); held < 250*time.Millisecond {
				// The hold is 300ms; the reader's clock may take each
				// byte a few ms late.
				t.Errorf("%s: closed %v after opening, well before the 300ms hold", name, held)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the relay got % X within 10 s, want open then close", name, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
