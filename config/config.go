package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/cardd/cardd/apdu/epurse"
	"github.com/cardd/cardd/apdu/psam"
	"github.com/cardd/cardd/money"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Modes, the values of the mode key: which tap workflow the daemon runs.
const (
	ModeKiosk = "kiosk" // self-service kiosk: balance, last transactions, pending loads, receipt
	ModePOS   = "pos"   // canteen POS: purchase through the PSAM
	ModeDoor  = "door"  // dorm door reader: allow/deny from the local list, pending loads
)

// Purse types, the values of epurse.purse.
const (
	PurseEP = "ep" // electronic purse (the usual prepaid wallet)
	PurseED = "ed" // electronic deposit (PIN-protected passbook)
)

// Config is the daemon's whole configuration. Build it with [Default] or [Load];
// a Config built by hand must pass [Config.Validate] before use, because the
// helper methods assume valid values.
type Config struct {
	// Mode is the tap workflow: "kiosk", "pos" or "door".
	Mode     string         `mapstructure:"mode"`
	Terminal TerminalConfig `mapstructure:"terminal"`
	Reader   ReaderConfig   `mapstructure:"reader"`
	EPurse   EPurseConfig   `mapstructure:"epurse"`
	Store    StoreConfig    `mapstructure:"store"`
	Host     HostConfig     `mapstructure:"host"`
	API      APIConfig      `mapstructure:"api"`
	Log      LogConfig      `mapstructure:"log"`
	Tap      TapConfig      `mapstructure:"tap"`
	Load     LoadConfig     `mapstructure:"load"`
	POS      POSConfig      `mapstructure:"pos"`
	PSAM     PSAMConfig     `mapstructure:"psam"`
	Door     DoorConfig     `mapstructure:"door"`
	Mifare   MifareConfig   `mapstructure:"mifare"`
	Printer  PrinterConfig  `mapstructure:"printer"`
	Receipt  ReceiptConfig  `mapstructure:"receipt"`
	Kiosk    KioskConfig    `mapstructure:"kiosk"`
}

// TerminalConfig identifies this terminal to the card and to the host.
type TerminalConfig struct {
	// ID is the 6-byte e-purse terminal id as 12 hex digits. It goes into
	// INITIALIZE FOR LOAD/PURCHASE and so into every MAC and TAC, and the host
	// keys the terminal's secret by it: two terminals must never share one.
	ID string `mapstructure:"id"`
}

// ReaderConfig chooses, by PC/SC reader name, where cards are tapped and where
// the PSAM sits. Both are Go regular expressions (regexp syntax), matched
// anywhere in the name unless anchored with ^ and $.
//
// A reader whose name matches SAMPattern is the SAM reader and is never used for
// user cards even when CardPattern matches it too; so the default CardPattern
// ".*" means "every reader except the SAM's".
//
// On the simulated setup pcscd's vpcd driver names its two slots
// "Virtual PCD 00 00" and "Virtual PCD 00 01". With the user card in the first
// and the PSAM in the second:
//
//	reader:
//	  card_pattern: "^Virtual PCD 00 00$"
//	  sam_pattern: "^Virtual PCD 00 01$"
//
// or, equivalently, keep card_pattern ".*" and set only sam_pattern
// "PCD 00 01$". A dual-interface desktop reader such as an ACS ACR1281 shows up
// as "... PICC 00 00" and "... SAM 00 01"; card_pattern "PICC" with
// sam_pattern "SAM" fits it.
type ReaderConfig struct {
	// CardPattern selects the reader(s) where user cards are tapped.
	CardPattern string `mapstructure:"card_pattern"`
	// SAMPattern selects the reader holding the PSAM; empty means no SAM, so
	// no purchase can be made (POS mode needs one).
	SAMPattern string `mapstructure:"sam_pattern"`
}

// EPurseConfig tunes how the e-purse application on the card is read.
type EPurseConfig struct {
	// AIDs are the DF names tried with SELECT, in order, as hex (1 to 16
	// bytes each: Beijing's cards answer "PBOC"). Order matters: every miss
	// costs one APDU per tap, so put the fleet's most common card first. The
	// default is every card profile's name (epurse.DefaultAIDs).
	AIDs []string `mapstructure:"aids"`
	// OwnIssuers are the issuer ids (EF 0x15 bytes 0-7, 16 hex digits) of
	// the cards this deployment issues, read with the campus profile; the
	// default is the simulator's, 0001000000000000.
	OwnIssuers []string `mapstructure:"own_issuers"`
	// Purse is "ep" (electronic purse) or "ed" (electronic deposit).
	Purse string `mapstructure:"purse"`
	// LogFiles are the short file identifiers (1..30) of the transaction log
	// files, read in order. In the file they may be ints (0x18, 24) or strings
	// ("0x18"); strings without 0x are decimal.
	LogFiles []int `mapstructure:"log_files"`
	// LogRecords is how many of the newest log records to read (1..10): each
	// one is a READ RECORD, so more records mean a slower tap.
	LogRecords int `mapstructure:"log_records"`
}

// StoreConfig locates the local SQLite journal.
type StoreConfig struct {
	// Path is the SQLite file. Its directory must be on persistent storage:
	// the journal is what keeps money safe across a crash.
	Path string `mapstructure:"path"`
	// Retention is how long a journal row the host has acknowledged is
	// kept (DESIGN.md, money rule 5); unacknowledged rows are never purged.
	Retention time.Duration `mapstructure:"retention"`
}

// LoadConfig governs the on-tap load of pending credits.
type LoadConfig struct {
	// BalanceCap is the most a card may hold after a load, in yuan ("1000.00"):
	// a credit that would take the card above it is refused, with the reason.
	BalanceCap string `mapstructure:"balance_cap"`
}

// POSConfig governs purchases at a canteen POS (mode pos).
type POSConfig struct {
	// DailyLimit is what a card may spend in a day (the terminal's local
	// day) before its PIN is asked, in yuan; "0" means no daily limit. The
	// day's spending is the card's own log plus this terminal's journal.
	DailyLimit string `mapstructure:"daily_limit"`
	// MaxPurchase is the largest single purchase that can be armed, in yuan.
	MaxPurchase string `mapstructure:"max_purchase"`
	// SAMApps are the PSAM's purchase application, tried in order: 4 hex
	// digits are a file id ("1001"), 10 to 32 an AID.
	SAMApps []string `mapstructure:"sam_apps"`
	// Periods are the meal periods (餐别); none: keyed sales at any time.
	Periods []PeriodConfig `mapstructure:"periods"`
	// Classes are the identity classes (身份) by the card's own type, EF
	// 0x15 bytes 28-29: class name to card types in hex ("02": byte 28,
	// "0201": both). A fixed period prices them by class_prices.
	Classes map[string][]string `mapstructure:"classes"`
	// VoidWindow is how long after a sale the cashier may void it (冲正,
	// cardd pos void): from the sale's write-ahead to the void.
	VoidWindow time.Duration `mapstructure:"void_window"`
	// RequireShift sells only while a cashier's shift is open (cardd pos
	// shift open); false sells at any time, sales with no shift open
	// counted in none.
	RequireShift bool `mapstructure:"require_shift"`
	// CloseCards lets this POS close the cards the host asked to close
	// (销户, cardhost card close): their next tap debits their whole
	// balance, owed back by the host. false serves such a card as any
	// other until the host's deny list says it is closed.
	CloseCards bool `mapstructure:"close_cards"`
}

// PSAMConfig says how the POS speaks to its PSAM (docs/psam.md): a profile
// for every card, and one per card family where the family's cards are
// paid through another application, key or diversification of the PSAM.
// A profile is a built-in name (cardd, cityunion, tunion) and/or settings:
// "tunion", "cityunion key_index=3", "apps=DF01 key_index=psam
// diversification=issuer security_code=off" (psam.ParseProfile).
type PSAMConfig struct {
	// Profile is the profile of cards whose family has none of its own.
	Profile  string       `mapstructure:"profile"`
	Families PSAMFamilies `mapstructure:"families"`
}

// PSAMFamilies are the per-family profiles; "" means psam.profile. The
// names are the card families of apdu/epurse's card profiles.
type PSAMFamilies struct {
	Campus    string `mapstructure:"campus"`
	CityUnion string `mapstructure:"cityunion"`
	TUnion    string `mapstructure:"tunion"`
	Shanghai  string `mapstructure:"shanghai"`
	Shenzhen  string `mapstructure:"shenzhen"`
	Beijing   string `mapstructure:"beijing"`
	Wuhan     string `mapstructure:"wuhan"`
	Suzhou    string `mapstructure:"suzhou"`
	Generic   string `mapstructure:"generic"`
}

// byFamily lists the families' profiles with their family names.
func (f PSAMFamilies) byFamily() [][2]string {
	return [][2]string{{"campus", f.Campus}, {"cityunion", f.CityUnion}, {"tunion", f.TUnion},
		{"shanghai", f.Shanghai}, {"shenzhen", f.Shenzhen}, {"beijing", f.Beijing},
		{"wuhan", f.Wuhan}, {"suzhou", f.Suzhou}, {"generic", f.Generic}}
}

// Profiles returns the profiles parsed; the config must be valid.
func (p PSAMConfig) Profiles() psam.Profiles {
	out := psam.Profiles{Families: map[string]psam.Profile{}}
	out.Default, _ = psam.ParseProfile(p.Profile)
	for _, f := range p.Families.byFamily() {
		if f[1] != "" {
			out.Families[f[0]], _ = psam.ParseProfile(f[1])
		}
	}
	return out
}

// DoorConfig is the dorm door (mode door). Validate checks its values with
// the checks package door uses (ValidateDoorGroups, ValidateDoorRelay), so
// cardd config and cardd doctor refuse what the daemon would.
type DoorConfig struct {
	// Groups are the access list's groups this door admits; "*" is all.
	Groups []string `mapstructure:"groups"`
	// LoadCredits writes a card's pending top-ups onto it after the door
	// opened ("tap for 3 seconds to sync"); needs host.url.
	LoadCredits bool `mapstructure:"load_credits"`
	// CardFamilies are the card profiles (docs/cards.md) whose numbers the
	// door takes. A door decides by number alone, and families number
	// independently: a City Union card of another city may carry a campus
	// card's 16 digits. Default: campus and tunion.
	CardFamilies []string        `mapstructure:"card_families"`
	Relay        DoorRelayConfig `mapstructure:"relay"`
}

// MifareConfig is the M1 (MIFARE Classic) wallet, paid from at a POS.
type MifareConfig struct {
	// KeyFile is the wallet key file (sector, blocks, keys A and B; JSON,
	// mode 0600); "" means M1 cards are not taken as wallets.
	KeyFile string `mapstructure:"key_file"`
	// SlotConvention is how the reader takes keys (FF 82): "acs" (P1 00, volatile
	// slots 0 and 1, ACS and most PC/SC readers) or "nonvolatile" (P1 20,
	// keys kept in the reader, e.g. HID OMNIKEY).
	SlotConvention string `mapstructure:"slot_convention"`
}

// DoorRelayConfig is the relay board that releases the door's lock.
type DoorRelayConfig struct {
	// Port is the serial device of the relay board, e.g. /dev/ttyUSB0.
	Port string `mapstructure:"port"`
	Baud int    `mapstructure:"baud"`
	// Open and Close are the bytes that switch the relay on and off, hex.
	Open  string `mapstructure:"open"`
	Close string `mapstructure:"close"`
	// Hold is how long the door stays unlocked after an allowed tap.
	Hold time.Duration `mapstructure:"hold"`
}

// DailyLimitFen is DailyLimit in fen, -1 for no limit; the config must be
// valid.
func (p POSConfig) DailyLimitFen() int64 {
	fen, _ := money.Parse(p.DailyLimit)
	if fen == 0 {
		return -1
	}
	return fen
}

// MaxPurchaseFen is MaxPurchase in fen; the config must be valid.
func (p POSConfig) MaxPurchaseFen() int64 {
	fen, _ := money.Parse(p.MaxPurchase)
	return fen
}

// SAMApp is one entry of pos.sam_apps: a file id or an AID.
type SAMApp struct {
	FileID uint16
	AID    []byte
}

// SAMAppList returns pos.sam_apps decoded; the config must be valid.
func (p POSConfig) SAMAppList() []SAMApp {
	out := make([]SAMApp, 0, len(p.SAMApps))
	for _, a := range p.SAMApps {
		b, err := hex.DecodeString(a)
		switch {
		case err != nil:
		case len(b) == 2:
			out = append(out, SAMApp{FileID: uint16(b[0])<<8 | uint16(b[1])})
		default:
			out = append(out, SAMApp{AID: b})
		}
	}
	return out
}

// BalanceCapFen is BalanceCap in fen; the config must be valid.
func (l LoadConfig) BalanceCapFen() int64 {
	fen, _ := money.Parse(l.BalanceCap)
	return fen
}

// Printer text modes, the values of printer.text: how Chinese reaches the
// paper.
const (
	TextGB18030 = "gb18030" // the printer has a Chinese font and takes GB18030
	TextGBK     = "gbk"     // an older Chinese printer that takes GBK only
	TextRaster  = "raster"  // no Chinese font: lines are drawn (GS v 0) with printer.font_file
)

// PrinterConfig is the receipt printer on a serial (or USB-serial) port.
type PrinterConfig struct {
	// Enabled turns printing on; then Port is required.
	Enabled bool `mapstructure:"enabled"`
	// Port is the serial device, e.g. /dev/ttyUSB0, or a stable symlink
	// (a udev rule's /dev/receipt-printer; the simulator's /tmp/cardd-printer).
	// A port that is missing while the daemon runs is waited for, not fatal:
	// a USB-serial printer comes and goes with its cable.
	Port string `mapstructure:"port"`
	// Baud is the line speed; the printer's DIP switches or self-test page
	// tell it (9600 and 115200 are usual).
	Baud int `mapstructure:"baud"`
	// DataBits is 5..8 (8 for every ESC/POS printer seen).
	DataBits int `mapstructure:"data_bits"`
	// Parity is "none", "odd", "even", "mark" or "space".
	Parity string `mapstructure:"parity"`
	// StopBits is "1" or "2". (1.5 is not offered: go.bug.st/serial
	// cannot set it on Linux.)
	StopBits string `mapstructure:"stop_bits"`
	// FlowControl is "none" or "xonxoff" (the printer sends XOFF when its
	// buffer is nearly full and XON when it can take more; cardd pauses in
	// between). RTS/CTS is not offered: go.bug.st/serial always turns it off.
	FlowControl string `mapstructure:"flow_control"`
	// Paper is the roll width in mm: 58 (32 columns) or 80 (48 columns).
	Paper int `mapstructure:"paper"`
	// Text is how Chinese is printed: "gb18030", "gbk" or "raster".
	Text string `mapstructure:"text"`
	// FontFile is a TrueType/OpenType font (.ttf, .otf or .ttc) with Chinese
	// glyphs, required for text "raster", e.g.
	// /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc (Debian fonts-wqy-zenhei).
	FontFile string `mapstructure:"font_file"`
	// FourByte is what the gb18030 and gbk modes do with a line holding
	// a character that has no 2-byte code (王𠮷's 𠮷): "text" sends it as
	// text (GB18030's 4-byte code, which a printer whose font knows only
	// GB2312/GBK prints as stray digits; refused in gbk mode), "image"
	// draws that line with FontFile, which then needs the glyphs (Noto
	// Sans CJK has them; wqy-zenhei does not).
	FourByte string `mapstructure:"four_byte"`
	// StatusChecks asks the printer its state (DLE EOT) before and after
	// each receipt. Turn it off for a printer on a one-way cable or one
	// that answers wrongly (always "offline"): receipts are then sent
	// blind and counted printed once written.
	StatusChecks bool `mapstructure:"status_checks"`
	// StatusTimeout bounds the wait for a status answer; no answer in time
	// counts as "printer not answering", never as a hang.
	StatusTimeout time.Duration `mapstructure:"status_timeout"`
	// Code is what the receipt carries of the transaction reference: "qr",
	// "code128" or "none".
	Code string `mapstructure:"code"`
}

// MaxStatementLines bounds receipt.statement_lines: a balance slip of 50
// transactions is already 35 cm of 58 mm paper.
const MaxStatementLines = 50

// ReceiptConfig is what every receipt says besides the transaction.
type ReceiptConfig struct {
	// Merchant is the heading, e.g. "XX大学一卡通中心".
	Merchant string `mapstructure:"merchant"`
	// Footer lines are printed at the bottom, each centred.
	Footer []string `mapstructure:"footer"`
	// StatementLines is how many of the card's newest transactions a
	// balance slip lists (0 to 50; 0 lists none).
	StatementLines int `mapstructure:"statement_lines"`
}

// HostConfig is the link to the central host.
type HostConfig struct {
	// URL is the host's base URL (http or https); empty runs offline, with
	// the journal kept until a host is configured.
	URL string `mapstructure:"url"`
	// SecretFile is the path of the file holding this terminal's HMAC secret,
	// read with [ReadSecretFile]. Required when URL is set.
	SecretFile string `mapstructure:"secret_file"`
	// CAFile is a PEM bundle the certificate of an https:// host must chain
	// to; empty uses the system roots. See [HostConfig.TLSConfig].
	CAFile string `mapstructure:"ca_file"`
	// PinSHA256, when set, is the SHA-256 of the host certificate's
	// SubjectPublicKeyInfo (hex or base64) that the host must present, on
	// top of the chain's verification.
	PinSHA256 string `mapstructure:"pin_sha256"`
	// Insecure allows a plain http:// URL to a host off loopback. It never
	// turns off the verification of an https:// host.
	Insecure bool `mapstructure:"insecure"`
}

// APIConfig is the local HTTP API used by the kiosk screen and the POS app.
type APIConfig struct {
	// Listen is the host:port to listen on. Off loopback, TokenFile is
	// required, because the API can arm a purchase.
	Listen string `mapstructure:"listen"`
	// TokenFile is the path of the file holding the POS app's bearer token,
	// read with [ReadSecretFile]; empty means a random token per run, written
	// only to the runtime file for cardd pos (loopback only).
	TokenFile string `mapstructure:"token_file"`
	// AllowedHosts are more names or addresses, each with an optional
	// :port (else the listen port), that clients may use to reach the API:
	// the Host header of a request must be one of them, the listen address
	// or, on loopback or a wildcard address, a loopback name. It keeps web
	// pages of other sites out through DNS rebinding.
	AllowedHosts []string `mapstructure:"allowed_hosts"`
}

// LogConfig controls the daemon's own log.
type LogConfig struct {
	// Level is "debug", "info", "warn" or "error".
	Level string `mapstructure:"level"`
	// Format is "text" or "json" (for a log collector).
	Format string `mapstructure:"format"`
}

// TapConfig bounds the work done for one tap.
type TapConfig struct {
	// Timeout bounds one tap's card session, from card present to the last
	// APDU. A card held too briefly must fail fast rather than hang the reader.
	Timeout time.Duration `mapstructure:"timeout"`
}

// Default returns the built-in configuration: a kiosk, offline, with the API on
// loopback. It passes Validate.
func Default() Config {
	return Config{
		Mode:     ModeKiosk,
		Terminal: TerminalConfig{ID: "000000000001"},
		Reader:   ReaderConfig{CardPattern: ".*", SAMPattern: ""},
		EPurse: EPurseConfig{
			// Our own cards' names first (the city card, then T-Union),
			// then every other family's (docs/cards.md).
			AIDs:       defaultAIDs(),
			OwnIssuers: []string{strings.ToUpper(hex.EncodeToString(epurse.DefaultIssuerID[:]))},
			Purse:      PurseEP,
			LogFiles:   []int{0x18},
			LogRecords: 5,
		},
		Store: StoreConfig{Path: DefaultStorePath(), Retention: 180 * 24 * time.Hour},
		Host:  HostConfig{},
		API:   APIConfig{Listen: "127.0.0.1:8711", AllowedHosts: []string{}},
		Log:   LogConfig{Level: "info", Format: "text"},
		Tap:   TapConfig{Timeout: 3 * time.Second},
		Load:  LoadConfig{BalanceCap: "1000.00"},
		POS:   POSConfig{DailyLimit: "200.00", MaxPurchase: "500.00", SAMApps: []string{"1001"}, VoidWindow: 5 * time.Minute, CloseCards: true},
		PSAM:  PSAMConfig{Profile: "cardd"},
		// The LCUS-1 USB relay board's channel 1, the most common board.
		Mifare: MifareConfig{SlotConvention: "acs"},
		Door: DoorConfig{Groups: []string{"*"}, LoadCredits: true, CardFamilies: []string{"campus", "tunion"},
			Relay: DoorRelayConfig{Baud: 9600, Open: "A00101A2", Close: "A00100A1", Hold: 3 * time.Second}},
		Printer: PrinterConfig{Baud: 9600, DataBits: 8, Parity: "none", StopBits: "1", FlowControl: "none",
			Paper: 58, Text: TextGB18030, FourByte: "text", StatusChecks: true, StatusTimeout: 500 * time.Millisecond, Code: "qr"},
		Receipt: ReceiptConfig{Merchant: "校园一卡通", Footer: []string{"请妥善保管小票"}, StatementLines: 5},
		Kiosk:   defaultKiosk(),
	}
}

// TerminalID returns terminal.id as its 6 bytes. It returns zeros when the id
// is not valid, which Validate refuses.
func (c *Config) TerminalID() [6]byte {
	var id [6]byte
	if b, err := hex.DecodeString(c.Terminal.ID); err == nil && len(b) == len(id) {
		copy(id[:], b)
	}
	return id
}

func defaultAIDs() []string {
	var out []string
	for _, a := range epurse.DefaultAIDs() {
		out = append(out, strings.ToUpper(hex.EncodeToString(a)))
	}
	return out
}

// OwnIssuerIDs returns epurse.own_issuers decoded; entries that are not 8
// bytes of hex (which Validate refuses) are left out.
func (e EPurseConfig) OwnIssuerIDs() [][8]byte {
	out := make([][8]byte, 0, len(e.OwnIssuers))
	for _, a := range e.OwnIssuers {
		if b, err := hex.DecodeString(a); err == nil && len(b) == 8 {
			out = append(out, [8]byte(b))
		}
	}
	return out
}

// AIDBytes returns epurse.aids decoded, in order; entries that are not valid
// hex (which Validate refuses) are left out.
func (e EPurseConfig) AIDBytes() [][]byte {
	out := make([][]byte, 0, len(e.AIDs))
	for _, a := range e.AIDs {
		if b, err := hex.DecodeString(a); err == nil {
			out = append(out, b)
		}
	}
	return out
}

// IsSAMReader reports whether the PC/SC reader called name holds the PSAM.
// An empty SAMPattern matches no reader.
func (r ReaderConfig) IsSAMReader(name string) bool {
	if r.SAMPattern == "" {
		return false
	}
	re, err := regexp.Compile(r.SAMPattern)
	return err == nil && re.MatchString(name)
}

// IsCardReader reports whether the PC/SC reader called name is one where user
// cards are tapped: it matches CardPattern and is not the SAM reader. The
// patterns are compiled on each call; readers come and go rarely.
func (r ReaderConfig) IsCardReader(name string) bool {
	re, err := regexp.Compile(r.CardPattern)
	return err == nil && re.MatchString(name) && !r.IsSAMReader(name)
}

// SlogLevel returns log.level as a slog.Level (info for an invalid level).
func (l LogConfig) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Validate checks every key and returns nil or the bad keys as
// [*ValidationError]s joined with errors.Join, in the stable order of the key
// table (see the package documentation). Use errors.As to get the first.
//
// It is the one check of the configuration: `cardd config`, `cardd doctor`
// and `cardd run` all refuse what it refuses, door.* included.
func (c *Config) Validate() error {
	var p problems
	oneOf(p.bad, "mode", c.Mode, ModeKiosk, ModePOS, ModeDoor)
	if c.Mode == ModeDoor && !doorSupported {
		p.bad("mode", c.Mode, "door mode runs on Linux only (docs/windows.md): use kiosk or pos on Windows")
	}
	if !isHex(c.Terminal.ID) || len(c.Terminal.ID) != 12 {
		p.bad("terminal.id", c.Terminal.ID, "must be 12 hex digits (the 6-byte terminal id), like \"000000000001\"")
	}
	c.Reader.validate(&p)
	c.EPurse.validate(&p)
	if strings.TrimSpace(c.Store.Path) == "" {
		p.bad("store.path", c.Store.Path, "must not be empty: the journal needs a file")
	}
	c.Host.validate(&p)
	c.API.validate(&p)
	oneOf(p.bad, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf(p.bad, "log.format", c.Log.Format, "text", "json")
	c.validateMoney(&p)
	c.POS.validateApps(&p)
	c.validateClasses(&p)
	c.validatePeriods(&p)
	c.PSAM.validate(&p)
	c.Door.validate(&p, c.Mode == ModeDoor)
	oneOf(p.bad, "mifare.slot_convention", c.Mifare.SlotConvention, "acs", "nonvolatile")
	if c.Mode == ModePOS && c.EPurse.Purse == PurseED {
		p.bad("epurse.purse", c.EPurse.Purse, "mode pos debits the electronic purse (ep); the PIN-protected deposit (ed) is not sold from here")
	}
	if c.Mode == ModePOS && c.Reader.SAMPattern == "" {
		p.bad("reader.sam_pattern", "", "required in mode pos: purchases go through the PSAM in the SAM reader")
	}
	if c.Store.Retention < 24*time.Hour {
		p.bad("store.retention", c.Store.Retention.String(), "must be at least 24h; acknowledged rows are kept this long (default 4320h, 180 days)")
	}
	if c.Tap.Timeout <= 0 {
		p.bad("tap.timeout", c.Tap.Timeout.String(), "must be a positive duration, like \"3s\"")
	}
	if w := c.POS.VoidWindow; w < time.Second || w > MaxVoidWindow {
		p.bad("pos.void_window", w.String(), "must be a duration from 1s to 24h, like \"5m\"")
	}
	c.Printer.validate(&p)
	if n := c.Receipt.StatementLines; n < 0 || n > MaxStatementLines {
		p.bad("receipt.statement_lines", strconv.Itoa(n), "must be 0..%d (how many of the card's newest transactions a balance slip lists; 0 lists none)", MaxStatementLines)
	}
	c.validateTopup(&p)
	c.Kiosk.validate(&p)
	return errors.Join(p.errs...)
}

// problems collects the bad keys of one Validate, in the order found.
type problems struct{ errs []error }

// bad records key as bad, with the reason formatted from reason and args.
func (p *problems) bad(key, value, reason string, args ...any) {
	p.errs = append(p.errs, &ValidationError{Key: key, Value: value, Reason: fmt.Sprintf(reason, args...)})
}

func (r ReaderConfig) validate(p *problems) {
	if _, err := regexp.Compile(r.CardPattern); err != nil {
		p.bad("reader.card_pattern", r.CardPattern, "invalid regexp: %v", err)
	}
	if _, err := regexp.Compile(r.SAMPattern); err != nil {
		p.bad("reader.sam_pattern", r.SAMPattern, "invalid regexp: %v", err)
	}
}

func (e EPurseConfig) validate(p *problems) {
	if len(e.AIDs) == 0 {
		p.bad("epurse.aids", "", "must list at least one AID")
	}
	seenAID := map[string]bool{}
	for i, a := range e.AIDs {
		switch {
		case !isHex(a) || len(a)%2 != 0 || len(a) < 2 || len(a) > 32:
			p.bad("epurse.aids", a, "entry %d must be a DF name of 1 to 16 bytes in hex (2 to 32 hex digits)", i+1)
		case seenAID[strings.ToUpper(a)]:
			p.bad("epurse.aids", a, "entry %d repeats an earlier AID (each miss costs an APDU per tap)", i+1)
		}
		seenAID[strings.ToUpper(a)] = true
	}
	for i, a := range e.OwnIssuers {
		if !isHex(a) || len(a) != 16 {
			p.bad("epurse.own_issuers", a, "entry %d must be an issuer id of 8 bytes in hex (16 hex digits)", i+1)
		}
	}
	oneOf(p.bad, "epurse.purse", e.Purse, PurseEP, PurseED)
	if len(e.LogFiles) == 0 {
		p.bad("epurse.log_files", "", "must list at least one SFI")
	}
	seenSFI := map[int]bool{}
	for i, sfi := range e.LogFiles {
		switch {
		case sfi < 1 || sfi > 30:
			// An SFI is 5 bits and 31 is reserved (ISO 7816-4), so 1..30.
			p.bad("epurse.log_files", strconv.Itoa(sfi), "entry %d: SFI must be 1..30 (0x01..0x1E)", i+1)
		case seenSFI[sfi]:
			p.bad("epurse.log_files", strconv.Itoa(sfi), "entry %d repeats an earlier SFI", i+1)
		}
		seenSFI[sfi] = true
	}
	if n := e.LogRecords; n < 1 || n > 10 {
		p.bad("epurse.log_records", strconv.Itoa(n), "must be 1..10 (each record is one READ RECORD per tap)")
	}
}

func (h HostConfig) validate(p *problems) {
	if h.URL == "" {
		return
	}
	u, err := url.Parse(h.URL)
	switch {
	case err != nil:
		p.bad("host.url", h.URL, "invalid URL: %v", unwrapURLError(err))
		u = nil
	case u.Scheme != "http" && u.Scheme != "https":
		p.bad("host.url", h.URL, "must be an http:// or https:// URL (or empty to run offline)")
		u = nil
	case u.Host == "":
		p.bad("host.url", h.URL, "must name a host, like \"https://host.example.com\"")
		u = nil
	}
	h.validateTLS(p, u)
	if h.SecretFile == "" {
		p.bad("host.secret_file", "", "required when host.url is set: requests to the host are signed with this terminal's secret")
	}
}

func (a APIConfig) validate(p *problems) {
	if host, port, err := net.SplitHostPort(a.Listen); err != nil {
		p.bad("api.listen", a.Listen, "must be host:port, like \"127.0.0.1:8711\"")
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.bad("api.listen", a.Listen, "port must be a number 0..65535")
	} else if !isLoopback(host) && a.TokenFile == "" {
		p.bad("api.token_file", "", "required when api.listen (%q) is not a loopback address: the API can arm purchases", a.Listen)
	}
	for i, h := range a.AllowedHosts {
		if why := hostProblem(h); why != "" {
			p.bad("api.allowed_hosts", h, "entry %d: %s", i+1, why)
		}
	}
}

// validateMoney checks the amounts in yuan: load.balance_cap and pos's.
func (c *Config) validateMoney(p *problems) {
	if fen, err := money.Parse(c.Load.BalanceCap); err != nil || fen <= 0 || fen > 0xFFFFFFFF {
		p.bad("load.balance_cap", c.Load.BalanceCap, "must be an amount in yuan above 0 and at most 42949672.95, like \"1000.00\"")
	}
	if fen, err := money.Parse(c.POS.DailyLimit); err != nil || fen < 0 || fen > 0xFFFFFFFF {
		p.bad("pos.daily_limit", c.POS.DailyLimit, "must be an amount in yuan, 0 (no limit) to 42949672.95, like \"200.00\"")
	}
	if fen, err := money.Parse(c.POS.MaxPurchase); err != nil || fen <= 0 || fen > 0xFFFFFFFF {
		p.bad("pos.max_purchase", c.POS.MaxPurchase, "must be an amount in yuan above 0 and at most 42949672.95, like \"500.00\"")
	}
}

// MaxVoidWindow bounds pos.void_window: a void is the cashier's correction
// of a sale just made, not a refund desk.
const MaxVoidWindow = 24 * time.Hour

func (c POSConfig) validateApps(p *problems) {
	if len(c.SAMApps) == 0 {
		p.bad("pos.sam_apps", "", "must list at least one PSAM application, like [\"1001\"]")
	}
	for i, a := range c.SAMApps {
		if !isHex(a) || !(len(a) == 4 && a != "0000" || len(a)%2 == 0 && len(a) >= 10 && len(a) <= 32) {
			p.bad("pos.sam_apps", a, "entry %d must be a file id of 4 hex digits (\"1001\") or an AID of 5 to 16 bytes in hex", i+1)
		}
	}
}

func (c PSAMConfig) validate(p *problems) {
	if _, err := psam.ParseProfile(c.Profile); err != nil {
		p.bad("psam.profile", c.Profile, "%v", err)
	}
	for _, f := range c.Families.byFamily() {
		if _, err := psam.ParseProfile(f[1]); err != nil {
			p.bad("psam.families."+f[0], f[1], "%v", err)
		}
	}
}

// validate checks door.*: the relay port only in mode door (a kiosk has no
// relay), every other key always, with package door's own checks.
func (d DoorConfig) validate(p *problems, doorMode bool) {
	for i, f := range d.CardFamilies {
		if epurse.ProfileNamed(f) == nil {
			p.bad("door.card_families", f, "entry %d is not a card family: want one of %s", i+1, strings.Join(epurse.ProfileNames(), ", "))
		}
	}
	if doorMode && strings.TrimSpace(d.Relay.Port) == "" {
		p.bad("door.relay.port", d.Relay.Port, "required in mode door: the serial port of the relay board that opens the door")
	}
	p.errs = append(p.errs, ValidateDoorGroups(d.Groups)...)
	p.errs = append(p.errs, ValidateDoorRelay(d.Relay.Baud, d.Relay.Open, d.Relay.Close, d.Relay.Hold)...)
}

func (c PrinterConfig) validate(p *problems) {
	if c.Enabled && strings.TrimSpace(c.Port) == "" {
		p.bad("printer.port", c.Port, "required when printer.enabled is true: the serial device, like \"/dev/ttyUSB0\"")
	}
	if c.Baud <= 0 || c.Baud > 4000000 {
		p.bad("printer.baud", strconv.Itoa(c.Baud), "must be a line speed in bits per second, like 9600 or 115200")
	}
	if c.DataBits < 5 || c.DataBits > 8 {
		p.bad("printer.data_bits", strconv.Itoa(c.DataBits), "must be 5, 6, 7 or 8")
	}
	oneOf(p.bad, "printer.parity", c.Parity, "none", "odd", "even", "mark", "space")
	oneOf(p.bad, "printer.stop_bits", c.StopBits, "1", "2")
	oneOf(p.bad, "printer.flow_control", c.FlowControl, "none", "xonxoff")
	if c.Paper != 58 && c.Paper != 80 {
		p.bad("printer.paper", strconv.Itoa(c.Paper), "must be 58 or 80 (the roll width in mm)")
	}
	oneOf(p.bad, "printer.text", c.Text, TextGB18030, TextGBK, TextRaster)
	if c.Text == TextRaster && c.FontFile == "" {
		p.bad("printer.font_file", "", "required when printer.text is \"raster\": a font with Chinese glyphs, like /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
	}
	oneOf(p.bad, "printer.four_byte", c.FourByte, "text", "image")
	if c.FourByte == "image" && c.FontFile == "" {
		p.bad("printer.font_file", "", "required when printer.four_byte is \"image\": a font with the rare characters' glyphs, like /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc (fonts-noto-cjk)")
	}
	if c.StatusTimeout <= 0 {
		p.bad("printer.status_timeout", c.StatusTimeout.String(), "must be a positive duration, like \"500ms\"")
	}
	oneOf(p.bad, "printer.code", c.Code, "qr", "code128", "none")
}

// oneOf reports value through bad unless it is one of allowed. The comparison
// is exact (no case folding) so that what the file says is what runs.
func oneOf(bad func(key, value, reason string, args ...any), key, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	bad(key, value, "must be one of %s", strings.Join(allowed, ", "))
}

func isHex(s string) bool {
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F') {
			return false
		}
	}
	return true
}

// isLoopback accepts "localhost" and loopback IPs; any other name may resolve
// off the machine, so it is treated as exposed.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hostProblem says what is wrong with an api.allowed_hosts entry: a host
// name, an IPv4 address or an IPv6 address (in brackets with a port), with
// an optional :port. "" when nothing is.
func hostProblem(e string) string {
	if strings.Contains(e, "://") || strings.ContainsAny(e, "/?#@") {
		return "must be a host name or address with an optional :port, not a URL, like \"kiosk-3.canteen.lan\" or \"10.0.0.7:8711\""
	}
	if strings.Contains(e, "*") {
		return "wildcards are not allowed: list each name"
	}
	host := e
	if net.ParseIP(e) == nil {
		if h, port, err := net.SplitHostPort(e); err == nil {
			if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
				return "port must be a number 1..65535"
			}
			host = h
		} else if strings.HasPrefix(e, "[") && strings.HasSuffix(e, "]") {
			host = e[1 : len(e)-1]
		} else if strings.Contains(e, ":") && !strings.Contains(err.Error(), "missing port") {
			return "must be host or host:port (an IPv6 address with a port goes in brackets: \"[fe80::1]:8711\")"
		}
	}
	if net.ParseIP(host) != nil {
		return ""
	}
	if len(host) == 0 || len(host) > 253 {
		return "must be a host name of 1 to 253 characters"
	}
	for _, label := range strings.Split(host, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "each dot-separated part of a host name is 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen"
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Sprintf("%q is not allowed in a host name (letters, digits, hyphens and dots)", r)
			}
		}
	}
	return ""
}

// unwrapURLError drops url.Error's repetition of the URL, which the
// ValidationError already shows.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
