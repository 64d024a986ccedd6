package integration

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	epursesim "github.com/cardd/cardd/apdu/epurse/sim"
	"github.com/cardd/cardd/apdu/psam"
	psamsim "github.com/cardd/cardd/apdu/psam/sim"
	"github.com/cardd/cardd/host"
	"github.com/cardd/cardd/offline"
	"github.com/cardd/cardd/reader/vpcd"
)

// insertProfiledPSAM personalises a PSAM with the host's purchase master
// key, keyed as change says, and holds it in vpcd slot 1 until the test
// ends.
func insertProfiledPSAM(t *testing.T, hostDir string, change func(f *psamsim.SAMFile)) {
	t.Helper()
	f, err := psamsim.NewSAMFileFromKeyFile(filepath.Join(hostDir, host.MastersFile), samTerminal)
	if err != nil {
		t.Fatal(err)
	}
	change(f)
	path := filepath.Join(t.TempDir(), "psam.json")
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	sam, err := psamsim.LoadSimPSAM(path) // what `cardsim psam` would load
	if err != nil {
		t.Fatal(err)
	}
	insertSim(t, sam, 1, vpcd.Options{})
	// pcscd sees the PSAM only at its next presence poll: a daemon started
	// before that finds the SAM reader empty.
	deadline := time.Now().Add(10 * time.Second)
	for !cardPresent(t, slot1Reader) {
		if time.Now().After(deadline) {
			t.Fatalf("pcscd does not see the PSAM in %q after 10 s", slot1Reader)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// issueFor issues a card at the host whose purchase side fits PSAMs keyed
// as cp (what `cardhost card issue --purchase-…` does).
func (w *world) issueFor(t *testing.T, number string, balance int64, cp psamsim.CardPurchase) string {
	t.Helper()
	path := w.issue(t, number, balance)
	f, err := epursesim.LoadCardFile(path)
	if err != nil {
		t.Fatal(err)
	}
	w.keys.PersonalizePurchase(f, cp)
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// startPSAMDaemon starts `cardd run` in mode pos with PSAM profile prof
// (and the settings more), offline, and waits until it has the SAM reader.
func startPSAMDaemon(t *testing.T, storePath, prof string, more ...string) (*daemon, []string) {
	t.Helper()
	env := append([]string{"CARDD_MODE=pos", "CARDD_READER_SAM_PATTERN=^" + regexp.QuoteMeta(slot1Reader) + "$",
		"CARDD_STORE_PATH=" + storePath, "CARDD_TERMINAL_ID=" + termID, "CARDD_PSAM_PROFILE=" + prof}, more...)
	waitEmpty(t, 0)
	d := startDaemon(t, env...)
	d.waitLine(t, "reader added", 10*time.Second, func(m map[string]any) bool { return m["reader"] == slot1Reader && m["role"] == "sam" })
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(os.Interrupt)
		<-d.exit
	})
	return d, env
}

// TestPSAMProfilesThroughDaemon: `cardd run` in mode pos pays a sale through
// the simulated PSAM in each mode real issuers ship, the profile given by
// psam.profile: the key index (3) read from the PSAM's EF 0x17, two-level
// diversification in the issuer layout (DF 8011, as transport-ministry
// PSAMs) and in the city layout, and the card's security code. Each sale is
// on the card, in the journal, with the card's TAC over the PSAM's serial.
func TestPSAMProfilesThroughDaemon(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	for i, tc := range []struct {
		name string
		prof string
		sam  func(f *psamsim.SAMFile)
		card psamsim.CardPurchase
	}{
		{"key index 3 from the PSAM", "cardd key_index=psam", func(f *psamsim.SAMFile) { f.KeyIndex = 3 }, psamsim.CardPurchase{KeyIndex: 3}},
		{"two levels, issuer layout, DF 8011", "tunion", func(f *psamsim.SAMFile) { f.AppFileID, f.KeyIndex, f.Diversification = 0x8011, 3, psam.DiversifyIssuer },
			psamsim.CardPurchase{KeyIndex: 3, Diversification: psam.DiversifyIssuer}},
		{"two levels, city layout", "cardd diversification=city", func(f *psamsim.SAMFile) { f.Diversification = psam.DiversifyCity },
			psamsim.CardPurchase{Diversification: psam.DiversifyCity}},
		{"security code", "cityunion", func(f *psamsim.SAMFile) { f.KeyIndex, f.Diversification, f.SecurityCode = 2, psam.DiversifyCity, true },
			psamsim.CardPurchase{KeyIndex: 2, Diversification: psam.DiversifyCity, SecurityCode: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			insertProfiledPSAM(t, w.hostDir, tc.sam)
			number := "31010000008000" + string(rune('2'+i)) + "1"
			path := w.issueFor(t, number, 10000, tc.card)
			storePath := filepath.Join(t.TempDir(), "cardd.db")
			d, env := startPSAMDaemon(t, storePath, tc.prof)

			wait := posCharge(t, env, "", "12.50", "--wait", "20s")
			in := insert(t, path, 0, vpcd.Options{})
			out, err := wait()
			in.remove(t)
			if err != nil || !strings.Contains(out, "paid 12.50: balance 87.50") {
				t.Fatalf("cardd pos charge 12.50 with psam.profile %q: %v\n%s", tc.prof, err, out)
			}
			f, err := epursesim.LoadCardFile(path)
			if err != nil || f.EPBalance != 8750 {
				t.Fatalf("card balance %d (%v), want 8750", f.EPBalance, err)
			}
			rows := purchaseRows(t, storePath, number)
			if len(rows) != 1 || rows[0].State != offline.StateDone || rows[0].AmountFen != 1250 || rows[0].TermSerial != 1 {
				t.Fatalf("purchase rows %+v", rows)
			}
			checkTAC(t, path, rows[0])
			d.waitLine(t, "purchase debited", 5*time.Second, func(m map[string]any) bool {
				p, _ := psam.ParseProfile(tc.prof)
				return m["msg"] == "purchase debited" && m["psam_profile"] == p.String()
			})
		})
	}
}

// TestPSAMRefusesOneLevelThroughDaemon: a PSAM keyed two levels answers
// cardd's one-level INIT SAM FOR PURCHASE (Lc 1C) with 6700. The tap ends
// psam_refused, the POS says why (the profile, the length, one level), and
// no money moves: the card's balance is unchanged and the journal has no
// sale.
func TestPSAMRefusesOneLevelThroughDaemon(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	insertProfiledPSAM(t, w.hostDir, func(f *psamsim.SAMFile) { f.Diversification = psam.DiversifyCity })
	const number = "3101000000800091"
	path := w.issueFor(t, number, 10000, psamsim.CardPurchase{Diversification: psam.DiversifyCity})
	storePath := filepath.Join(t.TempDir(), "cardd.db")
	_, env := startPSAMDaemon(t, storePath, "cardd")

	wait := posCharge(t, env, "", "12.50", "--wait", "20s")
	in := insert(t, path, 0, vpcd.Options{})
	out, err := wait()
	in.remove(t)
	for _, want := range []string{"not paid (psam_refused)", "PSAM profile cardd key_index=1 diversification=one", "Lc 1C, one level", "6700"} {
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("cardd pos charge against a two-level PSAM: %v; output lacks %q:\n%s", err, want, out)
		}
	}
	f, err := epursesim.LoadCardFile(path)
	if err != nil || f.EPBalance != 10000 || len(f.Log) != 0 {
		t.Fatalf("card balance %d, %d log records (%v): the refused sale moved money", f.EPBalance, len(f.Log), err)
	}
	if rows := purchaseRows(t, storePath, number); len(rows) != 0 {
		t.Fatalf("journal rows after a refused sale: %+v", rows)
	}
	st, err := offline.Open(storePath, termID)
	if err != nil {
		t.Fatal(err)
	}
	unresolved, err := st.Unresolved(context.Background(), number)
	st.Close()
	if err != nil || len(unresolved) != 0 {
		t.Fatalf("unresolved rows %+v (%v)", unresolved, err)
	}
}

// TestPSAMProfileByFamilyThroughDaemon: with a city-card PSAM (keys
// diversified by city code, the card's security code required) in the SAM
// slot and psam.families.cityunion set to "cityunion", a City Union card (an
// issuer other than ours, city 3100, recognised by epurse.Identify) pays
// through that profile, while a campus card gets psam.profile (cardd, one
// level), which this PSAM refuses: not paid, nothing journaled for it.
func TestPSAMProfileByFamilyThroughDaemon(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	insertProfiledPSAM(t, w.hostDir, func(f *psamsim.SAMFile) { f.Diversification, f.SecurityCode = psam.DiversifyCity, true })
	keyed := psamsim.CardPurchase{Diversification: psam.DiversifyCity, SecurityCode: true}
	const city, campus = "3101000000800081", "3101000000800099"
	cityPath := w.issue(t, city, 10000)
	f, err := epursesim.LoadCardFile(cityPath)
	if err != nil {
		t.Fatal(err)
	}
	f.Info.IssuerID = [8]byte{0x02, 0x13, 0x31, 0x00, 0xFF, 0xFF, 0xFF, 0xFF} // another issuer, city 3100
	w.keys.PersonalizePurchase(f, keyed)
	if err := f.Save(cityPath); err != nil {
		t.Fatal(err)
	}
	campusPath := w.issueFor(t, campus, 10000, keyed)
	storePath := filepath.Join(t.TempDir(), "cardd.db")
	_, env := startPSAMDaemon(t, storePath, "cardd", "CARDD_PSAM_FAMILIES_CITYUNION=cityunion")

	wait := posCharge(t, env, "", "12.50", "--wait", "20s")
	in := insert(t, cityPath, 0, vpcd.Options{})
	out, err := wait()
	in.remove(t)
	if err != nil || !strings.Contains(out, "paid 12.50: balance 87.50") {
		t.Fatalf("City Union card through psam.families.cityunion: %v\n%s", err, out)
	}
	if rows := purchaseRows(t, storePath, city); len(rows) != 1 || rows[0].State != offline.StateDone {
		t.Fatalf("City Union purchase rows %+v", rows)
	}

	wait = posCharge(t, env, "", "12.50", "--wait", "20s")
	in = insert(t, campusPath, 0, vpcd.Options{})
	out, err = wait()
	in.remove(t)
	if err == nil || !strings.Contains(out, "not paid (psam_refused)") || !strings.Contains(out, "PSAM profile cardd ") {
		t.Fatalf("campus card through the default profile: %v\n%s", err, out)
	}
	if f, err := epursesim.LoadCardFile(campusPath); err != nil || f.EPBalance != 10000 {
		t.Fatalf("campus card balance %d (%v)", f.EPBalance, err)
	}
	if rows := purchaseRows(t, storePath, campus); len(rows) != 0 {
		t.Fatalf("campus purchase rows %+v", rows)
	}
}

// TestPSAMProfileCardPulledAtEveryAPDU is TestPOSPurchaseCardPulledAtEveryAPDU
// through a city-card PSAM whose key index is 3 (read from its EF 0x17),
// keyed two levels and checking the card's security code, the card keyed
// for it and having no key 1: each unfinished purchase, the one torn at its
// DEBIT included, settles from the card on its next tap, and each sale is
// paid exactly once.
func TestPSAMProfileCardPulledAtEveryAPDU(t *testing.T) {
	requirePCSC(t)
	w := newHostWorld(t)
	insertProfiledPSAM(t, w.hostDir, func(f *psamsim.SAMFile) { f.KeyIndex, f.Diversification, f.SecurityCode = 3, psam.DiversifyCity, true })
	prof, err := psam.ParseProfile("cityunion")
	if err != nil {
		t.Fatal(err)
	}
	store, till, results := startProfiledPOSRunner(t, -1, psam.Profiles{Default: prof})
	const number = "3101000000800003"
	path := w.issueFor(t, number, 50000, psamsim.CardPurchase{KeyIndex: 3, Diversification: psam.DiversifyCity, SecurityCode: true})
	pullAtEveryAPDU(t, path, number, store, till, results)
}
