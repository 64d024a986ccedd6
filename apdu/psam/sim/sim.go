package psamsim

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/cardd/cardd/apdu"
	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/apdu/psam"
)

// Status words the simulated PSAM answers. They are ISO 7816-4's and the
// PBOC ones that the apdu package names.
const (
	swWrongLength     uint16 = 0x6700
	swWrongData       uint16 = 0x6A80 // incorrect data field (a date that does not exist)
	swNoCurrentEF     uint16 = 0x6986 // command not allowed: no current EF
	swConditions      uint16 = 0x6985
	swFileNotFound    uint16 = 0x6A82
	swWrongP1P2       uint16 = 0x6A86
	swWrongOffset     uint16 = 0x6B00
	swINSNotSupported uint16 = 0x6D00
	swCLANotSupported uint16 = 0x6E00
	swSecurity        uint16 = 0x6982 // security status not satisfied: a wrong security code
	swMACInvalid      uint16 = 0x9302
	swCounterMax      uint16 = 0x9402
	swKeyNotFound     uint16 = 0x9403
)

// df is the PSAM's current dedicated file.
type df int

const (
	dfMF  df = iota // after reset, as on a real PSAM
	dfApp           // the purchase application
)

// session is what INIT SAM FOR PURCHASE leaves for the one MAC2 check that
// may follow it.
type session struct {
	sespk  [8]byte
	amount int64
}

// reply is a command's answer. Data that a contact T=0 SAM cannot send with
// the command itself (the command carried data too) is announced with 61xx
// and fetched with GET RESPONSE; a READ BINARY answers directly.
type reply struct {
	data      []byte
	sw        uint16
	announced bool
}

func status(sw uint16) reply { return reply{sw: sw} }

// SimPSAM is a simulated PSAM that answers APDUs as a real PBOC PSAM in a
// contact slot does (docs/psam.md), so Open, InitForPurchase and VerifyMAC2,
// and the daemon above them, run unchanged against it. It is an
// apdu.Transmitter and a reader/vpcd Card. Each terminal transaction serial
// is saved to the PSAM file before the MAC1 computed with it is answered, so
// a serial is never given twice, even across a crash. It is safe for
// concurrent use.
type SimPSAM struct {
	mu   sync.Mutex
	f    *SAMFile
	path string

	// diversify derives a card's purchase key from the master and the
	// 8-byte factor; the spec's test vectors, which give a card key,
	// replace it in tests.
	diversify func(master epurse.Key16, factor []byte) epurse.Key16

	// Power-session state, cleared by Reset.
	df      df
	pending []byte   // answer data waiting for GET RESPONSE
	sess    *session // the last MAC1's session, for one MAC2 check
	code    []byte   // the card's security code, for the very next INIT
}

// NewSimPSAM makes a PSAM of f, which it owns from then on (read it back
// with File). path is where every new serial is saved; "" keeps the PSAM in
// memory.
func NewSimPSAM(f *SAMFile, path string) *SimPSAM {
	return &SimPSAM{f: f, path: path, diversify: epurse.DiversifyKey}
}

// LoadSimPSAM loads the PSAM file at path (LoadSAMFile) and makes a PSAM
// that saves back to it.
func LoadSimPSAM(path string) (*SimPSAM, error) {
	f, err := LoadSAMFile(path)
	if err != nil {
		return nil, err
	}
	return NewSimPSAM(f, path), nil
}

// File returns a copy of the PSAM's current state.
func (s *SimPSAM) File() *SAMFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.clone()
}

// Reset is a power cycle: the MF is current again, and an answer waiting
// for GET RESPONSE and the MAC1 session are lost. The serial is not: it is
// on disk.
func (s *SimPSAM) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.df, s.pending, s.sess, s.code = dfMF, nil, nil, nil
}

// simHistorical are the ATR's historical bytes: category 80 (COMPACT-TLV
// follows), then tag 5 "card issuer's data" of 9 bytes naming the simulator.
var simHistorical = []byte{0x80, 0x59, 'C', 'A', 'R', 'D', 'D', ' ', 'S', 'A', 'M'}

// ATR returns the answer to reset of a contact T=0 card: TS 3B (direct
// convention), T0 0K (no interface bytes, so T=0 and default timing; K
// historical bytes), then the historical bytes. With only T=0 indicated
// there is no TCK (ISO 7816-3 §8.2.5).
func (s *SimPSAM) ATR() []byte {
	return append([]byte{0x3B, byte(len(simHistorical))}, simHistorical...)
}

// Transmit executes one command APDU and returns the response APDU. An
// error is returned only when the PSAM could not save a new serial; nothing
// is answered then and the serial is not used, as when a SAM loses power
// while it writes its EEPROM.
func (s *SimPSAM) Transmit(cmd []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A waiting answer is for the very next command only (if it is GET
	// RESPONSE), and the MAC1 session lives until the next command other
	// than GET RESPONSE: one MAC1, at most one MAC2 check.
	pending, sess, code := s.pending, s.sess, s.code
	s.pending, s.sess, s.code = nil, nil, nil
	cm, err := apdu.ParseCommand(cmd)
	if err != nil {
		return swBytes(swWrongLength), nil
	}
	if cm.CLA == claISO && cm.INS == insGetResponse {
		s.sess = sess // GET RESPONSE finishes the INIT it fetches for
		return s.getResponse(cm, pending), nil
	}
	r, err := s.dispatch(cm, sess, code)
	if err != nil {
		return nil, err
	}
	if r.announced && len(r.data) > 0 {
		s.pending = r.data
		return swBytes(0x6100 | uint16(len(r.data)&0xFF)), nil // 6100 is 256 bytes
	}
	return apdu.Response{Data: r.data, SW: r.sw}.Bytes(), nil
}

func swBytes(sw uint16) []byte { return []byte{byte(sw >> 8), byte(sw)} }

func (s *SimPSAM) dispatch(cm apdu.Command, sess *session, code []byte) (reply, error) {
	if cm.CLA != claISO && cm.CLA != claPBOC {
		return status(swCLANotSupported), nil
	}
	var class byte
	switch cm.INS {
	case insSelect, insReadBinary, insGetResponse: // 00 C0 never gets here
		class = claISO
	case insInitSAMPurch, insCreditSAMPurch, insSecurityCode:
		class = claPBOC
	default:
		return status(swINSNotSupported), nil
	}
	if cm.CLA != class {
		return status(swCLANotSupported), nil
	}
	switch cm.INS {
	case insSelect:
		return s.selectFile(cm), nil
	case insReadBinary:
		return s.readBinary(cm), nil
	case insInitSAMPurch:
		return s.initForPurchase(cm, code)
	case insSecurityCode:
		return s.takeSecurityCode(cm), nil
	case insCreditSAMPurch:
		return s.creditForPurchase(cm, sess), nil
	}
	return status(swCLANotSupported), nil // GET RESPONSE in the PBOC class
}

// getResponse is GET RESPONSE (00 C0 00 00 Le): the answer that 61xx
// announced. A smaller Le takes part of it and 61xx announces the rest; a
// larger one is answered 6Cxx with the right one; Le 00 takes it all. A
// GET RESPONSE that is refused leaves the answer waiting.
func (s *SimPSAM) getResponse(cm apdu.Command, pending []byte) []byte {
	switch {
	case cm.P1 != 0x00 || cm.P2 != 0x00:
		s.pending = pending
		return swBytes(swWrongP1P2)
	case len(cm.Data) != 0:
		s.pending = pending
		return swBytes(swWrongLength)
	case pending == nil:
		return swBytes(swConditions) // nothing was announced
	case cm.Ne == 0 || (cm.Ne != apdu.MaxShortNe && cm.Ne > len(pending)):
		s.pending = pending
		return swBytes(0x6C00 | uint16(len(pending)&0xFF))
	case cm.Ne == apdu.MaxShortNe || cm.Ne == len(pending):
		return apdu.Response{Data: pending, SW: apdu.SWOK}.Bytes()
	}
	s.pending = pending[cm.Ne:]
	return apdu.Response{Data: pending[:cm.Ne], SW: 0x6100 | uint16(len(s.pending)&0xFF)}.Bytes()
}

// selectFile is SELECT of the MF (3F00, no data, or the name
// 1PAY.SYS.DDF01) or of the purchase application (file 1001 or its AID).
// A failed SELECT leaves the current DF as it was, as ISO 7816-4 says.
func (s *SimPSAM) selectFile(cm apdu.Command) reply {
	if cm.P2 != 0x00 && cm.P2 != 0x0C {
		return status(swWrongP1P2)
	}
	var to df
	switch cm.P1 {
	case 0x00: // by file id; no data also means the MF
		switch {
		case len(cm.Data) == 0:
			to = dfMF
		case len(cm.Data) != 2:
			return status(swWrongLength)
		case binary.BigEndian.Uint16(cm.Data) == psam.FileIDMF:
			to = dfMF
		case binary.BigEndian.Uint16(cm.Data) == s.f.appFileID():
			to = dfApp
		default:
			return status(swFileNotFound)
		}
	case 0x04: // by DF name
		switch {
		case bytes.Equal(cm.Data, pseName):
			to = dfMF
		case bytes.Equal(cm.Data, s.f.aid()):
			to = dfApp
		default:
			return status(swFileNotFound)
		}
	default:
		return status(swWrongP1P2)
	}
	s.df = to
	if cm.P2 == 0x0C {
		return status(apdu.SWOK) // "no response data" asked
	}
	name := pseName
	if to == dfApp {
		name = s.f.aid()
	}
	fci := apdu.AppendTLV(nil, 0x6F, apdu.AppendTLV(nil, 0x84, name))
	return reply{data: fci, sw: apdu.SWOK, announced: true}
}

// readBinary is READ BINARY with an SFI in P1 (100x xxxx) and the offset in
// P2; the EFs are 0x16 of the MF, the terminal id, and 0x17 of the
// purchase application, the purchase key index. Le beyond the end is
// answered 6Cxx with the length left; a smaller Le reads that many bytes;
// Le 00 reads all.
func (s *SimPSAM) readBinary(cm apdu.Command) reply {
	if cm.P1&0x80 == 0 {
		return status(swNoCurrentEF) // this PSAM selects no EF by file id
	}
	if cm.P1&0x60 != 0 {
		return status(swWrongP1P2)
	}
	if len(cm.Data) != 0 {
		return status(swWrongLength)
	}
	var content []byte
	switch {
	case s.df == dfMF && cm.P1&0x1F == psam.SFITerminalID:
		content = s.f.TerminalID[:]
	case s.df == dfApp && cm.P1&0x1F == psam.SFIKeyIndex:
		content = []byte{s.f.keyIndex()}
	default:
		return status(swFileNotFound)
	}
	off := int(cm.P2)
	if off >= len(content) {
		return status(swWrongOffset)
	}
	rest := content[off:]
	switch {
	case cm.Ne == 0:
		return status(swWrongLength)
	case cm.Ne == apdu.MaxShortNe:
		return reply{data: bytes.Clone(rest), sw: apdu.SWOK}
	case cm.Ne > len(rest):
		return status(0x6C00 | uint16(len(rest)))
	}
	return reply{data: bytes.Clone(rest[:cm.Ne]), sw: apdu.SWOK}
}

// initForPurchase is INIT SAM FOR PURCHASE (MAC1 计算). It takes the next
// terminal transaction serial and saves it before anything is answered,
// diversifies the master DPK with the card's factor, derives SESPK and
// answers serial ‖ MAC1 through 61 08. The session stays for one MAC2 check.
func (s *SimPSAM) initForPurchase(cm apdu.Command, code []byte) (reply, error) {
	if cm.P1 != 0x00 || cm.P2 != 0x00 {
		return status(swWrongP1P2), nil
	}
	// The request carries one factor per level of the PSAM's key: a PSAM
	// keyed once refuses a second factor (Lc 24), one keyed twice refuses
	// a request without it (Lc 1C).
	levels := 1
	if s.f.Diversification != psam.DiversifyOnce {
		levels = 2
	}
	if len(cm.Data) != initFixedLen+levels*psam.FactorLen {
		return status(swWrongLength), nil
	}
	if s.df != dfApp {
		return status(swConditions), nil
	}
	if s.f.SecurityCode && code == nil {
		return status(swConditions), nil // the card's security code must come just before
	}
	d := cm.Data
	var random [4]byte
	copy(random[:], d[0:4])
	counter := binary.BigEndian.Uint16(d[4:6])
	amount := int64(binary.BigEndian.Uint32(d[6:10]))
	tx := epurse.TxType(d[10])
	keyVersion, algID := d[18], d[19]
	factor := d[20:28]
	master := s.f.DPK
	if levels == 2 {
		// The second factor (issuer or city) is the first diversification
		// (docs/psam.md, "Diversification").
		master = epurse.DiversifyKey(master, d[28:36])
	}
	// The key is found by version and algorithm; only the 3DES rules of the
	// spec are known here (algId 00 or 01), so another one has no key.
	if keyVersion != s.f.KeyVersion || (algID != 0x00 && algID != 0x01) {
		return status(swKeyNotFound), nil
	}
	switch tx {
	case epurse.TxEDPurchase, epurse.TxEPPurchase, epurse.TxComposite:
	default:
		return status(swWrongData), nil
	}
	when, err := epurse.DecodeDateTime(d[11:15], d[15:18])
	if err != nil || when.IsZero() {
		return status(swWrongData), nil // no card can log a date that does not exist
	}
	if s.f.Serial == math.MaxUint32 {
		return status(swCounterMax), nil
	}
	cardKey := s.diversify(master, factor)
	if want := SimSecurityCode(cardKey, factor); s.f.SecurityCode && subtle.ConstantTimeCompare(code, want[:]) != 1 {
		return status(swSecurity), nil
	}
	serial := s.f.Serial + 1
	sespk := epurse.SessionKeyPurchase(cardKey, random, counter, serial)
	mac1, err := epurse.PurchaseMAC1(sespk, amount, tx, s.f.TerminalID, when)
	if err != nil {
		return status(swWrongData), nil // the 4-byte amount always fits; never reached
	}
	if err := s.commit(func(f *SAMFile) { f.Serial = serial }); err != nil {
		return reply{}, err
	}
	s.sess = &session{sespk: sespk, amount: amount}
	out := binary.BigEndian.AppendUint32(nil, serial)
	return reply{data: append(out, mac1[:]...), sw: apdu.SWOK, announced: true}, nil
}

// creditForPurchase is CREDIT SAM FOR PURCHASE (MAC2 校验): the card's MAC2
// must be MAC_SESPK(amount) of the last MAC1's session, and that session is
// spent by this check whatever its outcome.
func (s *SimPSAM) creditForPurchase(cm apdu.Command, sess *session) reply {
	if cm.P1 != 0x00 || cm.P2 != 0x00 {
		return status(swWrongP1P2)
	}
	if len(cm.Data) != 4 {
		return status(swWrongLength)
	}
	if sess == nil || s.df != dfApp {
		return status(swConditions)
	}
	want, err := epurse.PurchaseMAC2(sess.sespk, sess.amount)
	if err != nil || subtle.ConstantTimeCompare(want[:], cm.Data) != 1 {
		return status(swMACInvalid)
	}
	return status(apdu.SWOK)
}

// commit applies change to the PSAM file and saves it; when the save fails
// the change is undone and the error returned, so memory never runs ahead of
// what the PSAM would remember after a power loss.
func (s *SimPSAM) commit(change func(f *SAMFile)) error {
	before := s.f.clone()
	change(s.f)
	if s.path == "" {
		return nil
	}
	if err := s.f.Save(s.path); err != nil {
		*s.f = *before
		return fmt.Errorf("simulated PSAM: serial not saved, so not used: %w", err)
	}
	return nil
}

// takeSecurityCode is 80 CA 00 00 09 <code>: the card's security code,
// kept for the INIT SAM FOR PURCHASE that must come next, which checks it
// (the command itself cannot: it does not say which card). A PSAM that
// does not ask for codes does not know the command.
func (s *SimPSAM) takeSecurityCode(cm apdu.Command) reply {
	switch {
	case !s.f.SecurityCode:
		return status(swINSNotSupported)
	case cm.P1 != 0x00 || cm.P2 != 0x00:
		return status(swWrongP1P2)
	case len(cm.Data) != psam.SecurityCodeLen:
		return status(swWrongLength)
	case s.df != dfApp:
		return status(swConditions)
	}
	s.code = bytes.Clone(cm.Data)
	return status(apdu.SWOK)
}

// SimSecurityCode is the security code the simulator gives a card whose
// purchase key is cardKey and whose application serial ends with serial:
// 01 ‖ 3DES_cardKey(serial's rightmost 8 bytes). How real city cards
// derive theirs is not public; this is a simulation choice that lets the
// simulated PSAM check a code with nothing but its master key and the
// INIT's factors, as a real one checks it with keys of its own.
func SimSecurityCode(cardKey epurse.Key16, serial []byte) [psam.SecurityCodeLen]byte {
	var code [psam.SecurityCodeLen]byte
	code[0] = 0x01
	// DiversifyKey's left half is 3DES_K(F) of the rightmost 8 bytes.
	k := epurse.DiversifyKey(cardKey, serial)
	copy(code[1:], k[:8])
	return code
}
