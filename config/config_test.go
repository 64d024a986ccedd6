package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// cleanEnv makes the test independent of CARDD_* variables in the caller's
// environment. An empty variable counts as unset, so setting them all to ""
// is enough (and t.Setenv restores them afterwards).
func cleanEnv(t *testing.T) {
	t.Helper()
	t.Setenv(EnvConfig, "")
	var c Config
	for _, f := range fields(&c) {
		t.Setenv(envName(f.key), "")
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cardd.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("cardd", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestDefaultValidates(t *testing.T) {
	cleanEnv(t)
	d := Default()
	if err := d.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	c, err := Load(flags(t))
	if err != nil {
		t.Fatalf("Load with no file, env or flags: %v", err)
	}
	if !reflect.DeepEqual(*c, d) {
		t.Errorf("Load() = %+v, want the defaults %+v", *c, d)
	}
	if c, err := Load(nil); err != nil || !reflect.DeepEqual(*c, d) {
		t.Errorf("Load(nil) = %+v, %v", c, err)
	}
}

func TestPrecedence(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("door mode is Linux-only and refused on Windows (docs/windows.md)")
	}
	cleanEnv(t)
	path := writeFile(t, `
mode: door
terminal:
  id: "0102030405A6"
reader:
  card_pattern: "PICC"
door:
  relay:
    port: /dev/ttyUSB0
log:
  level: debug
  format: json
`)
	t.Setenv("CARDD_MODE", "pos")
	t.Setenv("CARDD_LOG_LEVEL", "warn")
	t.Setenv("CARDD_READER_CARD_PATTERN", "Virtual PCD 00 00")
	t.Setenv(EnvConfig, filepath.Join(t.TempDir(), "not-read.yaml")) // --config wins over it

	c, err := Load(flags(t, "--config", path, "--mode", "kiosk", "--reader-sam", "SAM"))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"flag beats env and file (mode)", c.Mode, "kiosk"},
		{"env beats file (log.level)", c.Log.Level, "warn"},
		{"env beats file (reader.card_pattern)", c.Reader.CardPattern, "Virtual PCD 00 00"},
		{"flag beats default (reader.sam_pattern)", c.Reader.SAMPattern, "SAM"},
		{"file beats default (log.format)", c.Log.Format, "json"},
		{"file beats default (terminal.id)", c.Terminal.ID, "0102030405A6"},
		{"default (store.path)", c.Store.Path, DefaultStorePath()},
		{"default (tap.timeout)", c.Tap.Timeout.String(), "3s"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if got, want := c.TerminalID(), [6]byte{1, 2, 3, 4, 5, 0xA6}; got != want {
		t.Errorf("TerminalID() = % X, want % X", got, want)
	}

	// Without --config, $CARDD_CONFIG names the file.
	t.Setenv(EnvConfig, path)
	t.Setenv("CARDD_MODE", "")
	c, err = Load(flags(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != "door" {
		t.Errorf("mode from $CARDD_CONFIG's file = %q, want door", c.Mode)
	}
	// An explicit --config "" reads no file even with $CARDD_CONFIG set.
	c, err = Load(flags(t, "--config="))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != "kiosk" {
		t.Errorf("mode with --config \"\" = %q, want the default kiosk", c.Mode)
	}
}

func TestUnsetFlagsDoNotOverride(t *testing.T) {
	cleanEnv(t)
	path := writeFile(t, "mode: pos\nreader:\n  sam_pattern: SAM\nlog:\n  level: error\n")
	c, err := Load(flags(t, "--config", path))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != "pos" || c.Log.Level != "error" {
		t.Errorf("registered but unset flags overrode the file: mode %q, log.level %q", c.Mode, c.Log.Level)
	}
	fs := flags(t)
	for _, name := range []string{"config", "mode", "terminal-id", "reader-card", "reader-sam", "log-level", "log-format"} {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("flag --%s not registered", name)
			continue
		}
		if f.DefValue != "" {
			t.Errorf("flag --%s has default %q; flags' defaults must be empty", name, f.DefValue)
		}
	}
}

func TestBadValues(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("it asserts Linux error texts (no such file or directory, is a directory); Windows words them otherwise, and some cases are door mode, Linux-only")
	}
	cases := []struct {
		name  string
		file  string            // YAML, or "" for no file
		env   map[string]string // extra environment
		args  []string          // flags
		key   string            // expected ValidationError.Key
		value string            // expected ValidationError.Value
		in    string            // substring of the message
	}{
		{name: "unknown mode", file: "mode: atm\n", key: "mode", value: "atm", in: "kiosk, pos, door"},
		{name: "mode of wrong type", file: "mode: 12\n", key: "mode", value: "12", in: "must be a string, got a number"},
		{name: "short terminal id", file: "terminal:\n  id: \"12345\"\n", key: "terminal.id", value: "12345", in: "12 hex digits"},
		{name: "non-hex terminal id", file: "terminal:\n  id: zz0000000001\n", key: "terminal.id", value: "zz0000000001", in: "12 hex digits"},
		{name: "unquoted terminal id", file: "terminal:\n  id: 000000000001\n", key: "terminal.id", value: "1", in: "quote it"},
		{name: "leaf given a section", file: "mode:\n  x: 1\n", key: "mode", in: "must be a string, got a section"},
		{name: "AID not a string", file: "epurse:\n  aids: [\"A000000632010105\", 7]\n", key: "epurse.aids", value: "7", in: "entry 2 must be a string"},
		{name: "bad card regexp", file: "reader:\n  card_pattern: \"[\"\n", key: "reader.card_pattern", value: "[", in: "invalid regexp: error parsing regexp: missing closing ]"},
		{name: "bad sam regexp", env: map[string]string{"CARDD_READER_SAM_PATTERN": "(x"}, key: "reader.sam_pattern", value: "(x", in: "invalid regexp"},
		{name: "door without a relay", file: "mode: door\n", key: "door.relay.port", value: "", in: "required in mode door"},
		{name: "pos without a SAM", file: "mode: pos\n", key: "reader.sam_pattern", value: "", in: "required in mode pos"},
		{name: "negative daily limit", file: "pos:\n  daily_limit: \"-1\"\n", key: "pos.daily_limit", value: "-1", in: "0 (no limit)"},
		{name: "daily limit with a float's digits", env: map[string]string{"CARDD_POS_DAILY_LIMIT": "200.001"}, key: "pos.daily_limit", value: "200.001", in: "amount in yuan"},
		{name: "zero max purchase", file: "pos:\n  max_purchase: \"0\"\n", key: "pos.max_purchase", value: "0", in: "above 0"},
		{name: "zero void window", file: "pos:\n  void_window: 0s\n", key: "pos.void_window", value: "0s", in: "from 1s to 24h"},
		{name: "void window of days", env: map[string]string{"CARDD_POS_VOID_WINDOW": "48h"}, key: "pos.void_window", value: "48h0m0s", in: "from 1s to 24h"},
		{name: "SAM app of 3 digits", file: "pos:\n  sam_apps: [\"100\"]\n", key: "pos.sam_apps", value: "100", in: "entry 1 must be a file id"},
		{name: "unknown PSAM profile", file: "psam:\n  profile: shanghai\n", key: "psam.profile", value: "shanghai", in: "not a built-in profile (cardd, cityunion, tunion)"},
		{name: "PSAM key index 0", env: map[string]string{"CARDD_PSAM_PROFILE": "cityunion key_index=0"}, key: "psam.profile", value: "cityunion key_index=0", in: "key_index=0: want 1 to 255, or psam"},
		{name: "family PSAM diversification", file: "psam:\n  families:\n    tunion: \"tunion diversification=twice\"\n", key: "psam.families.tunion", value: "tunion diversification=twice", in: "want one, issuer or city"},
		{name: "family PSAM apps", env: map[string]string{"CARDD_PSAM_FAMILIES_SHANGHAI": "apps=10"}, key: "psam.families.shanghai", value: "apps=10", in: "apps entry \"10\""},
		{name: "family PSAM setting twice", file: "psam:\n  families:\n    cityunion: \"security_code=on security_code=off\"\n", key: "psam.families.cityunion", value: "security_code=on security_code=off", in: "given twice"},
		{name: "misspelt family", file: "psam:\n  families:\n    tunoin: tunion\n", key: "psam.families.tunoin", value: "tunion", in: "did you mean psam.families.tunion?"},
		{name: "loud log level", file: "log:\n  level: loud\n", key: "log.level", value: "loud", in: "debug, info, warn, error"},
		{name: "four-byte picture", file: "printer:\n  four_byte: picture\n", key: "printer.four_byte", value: "picture", in: "text, image"},
		{name: "four-byte image without font", env: map[string]string{"CARDD_PRINTER_FOUR_BYTE": "image"}, key: "printer.font_file", in: "required when printer.four_byte is \"image\""},
		{name: "51 statement lines", file: "receipt:\n  statement_lines: 51\n", key: "receipt.statement_lines", value: "51", in: "0..50"},
		{name: "negative statement lines", env: map[string]string{"CARDD_RECEIPT_STATEMENT_LINES": "-1"}, key: "receipt.statement_lines", value: "-1", in: "0..50"},
		{name: "kiosk colour name", file: "kiosk:\n  colors:\n    primary: red\n", key: "kiosk.colors.primary", value: "red", in: "CSS hex colour"},
		{name: "kiosk colour CSS", env: map[string]string{"CARDD_KIOSK_COLORS_BACKGROUND": "#fff; background: url(//x)"}, key: "kiosk.colors.background", value: "#fff; background: url(//x)", in: "no other CSS"},
		{name: "kiosk colour 4 digits", file: "kiosk:\n  colors:\n    text: \"#1234\"\n", key: "kiosk.colors.text", value: "#1234", in: "#rgb or #rrggbb"},
		{name: "kiosk idle 3 s", file: "kiosk:\n  idle_seconds: 3\n", key: "kiosk.idle_seconds", value: "3", in: "5..3600"},
		{name: "kiosk idle a day", env: map[string]string{"CARDD_KIOSK_IDLE_SECONDS": "86400"}, key: "kiosk.idle_seconds", value: "86400", in: "or 0 to stay"},
		{name: "kiosk language", file: "kiosk:\n  language: zh\n", key: "kiosk.language", value: "zh", in: "zh-CN, en"},
		{name: "kiosk title of two lines", file: "kiosk:\n  title: \"a\\nb\"\n", key: "kiosk.title", value: "a\nb", in: "one line"},
		{name: "kiosk merchant too long", env: map[string]string{"CARDD_KIOSK_MERCHANT": strings.Repeat("商", 41)}, key: "kiosk.merchant", value: strings.Repeat("商", 41), in: "at most 40"},
		{name: "invoice URL relative", file: "kiosk:\n  invoice_url: /fapiao?o={order}\n", key: "kiosk.invoice_url", value: "/fapiao?o={order}", in: "absolute http:// or https://"},
		{name: "invoice URL javascript", env: map[string]string{"CARDD_KIOSK_INVOICE_URL": "javascript:alert({order})"}, key: "kiosk.invoice_url", value: "javascript:alert({order})", in: "absolute http:// or https://"},
		{name: "invoice URL without order", file: "kiosk:\n  invoice_url: https://fp.example.cn/?a={amount}\n", key: "kiosk.invoice_url", value: "https://fp.example.cn/?a={amount}", in: "must hold {order}"},
		{name: "invoice URL unknown placeholder", file: "kiosk:\n  invoice_url: https://fp.example.cn/?o={order}&c={card}\n", key: "kiosk.invoice_url", value: "https://fp.example.cn/?o={order}&c={card}", in: "unknown placeholder {card}"},
		{name: "invoice URL without host", file: "kiosk:\n  invoice_url: \"https:///{order}\"\n", key: "kiosk.invoice_url", value: "https:///{order}", in: "must name a host"},
		{name: "invoice URL bad", env: map[string]string{"CARDD_KIOSK_INVOICE_URL": "https://fp.example.cn:x/{order}"}, key: "kiosk.invoice_url", value: "https://fp.example.cn:x/{order}", in: "not a URL"},
		{name: "log format", args: []string{"--log-format", "xml"}, key: "log.format", value: "xml", in: "text, json"},
		{name: "11 log records", file: "epurse:\n  log_records: 11\n", key: "epurse.log_records", value: "11", in: "1..10"},
		{name: "0 log records from env", env: map[string]string{"CARDD_EPURSE_LOG_RECORDS": "0"}, key: "epurse.log_records", value: "0", in: "1..10"},
		{name: "log records not a number", env: map[string]string{"CARDD_EPURSE_LOG_RECORDS": "five"}, key: "epurse.log_records", value: "five", in: "whole number"},
		{name: "SFI 0", file: "epurse:\n  log_files: [0]\n", key: "epurse.log_files", value: "0", in: "1..30"},
		{name: "SFI 31", file: "epurse:\n  log_files: [0x18, \"0x1F\"]\n", key: "epurse.log_files", value: "31", in: "entry 2: SFI must be 1..30"},
		{name: "SFI not a number", file: "epurse:\n  log_files: [\"x18\"]\n", key: "epurse.log_files", value: "x18", in: "entry 1 must be a whole number"},
		{name: "repeated SFI", env: map[string]string{"CARDD_EPURSE_LOG_FILES": "0x18,24"}, key: "epurse.log_files", value: "24", in: "repeats"},
		{name: "empty SFI list", file: "epurse:\n  log_files: []\n", key: "epurse.log_files", in: "at least one"},
		{name: "odd AID", file: "epurse:\n  aids: [\"A0F\"]\n", key: "epurse.aids", value: "A0F", in: "1 to 16 bytes"},
		{name: "door admitting no group", file: "door:\n  groups: []\n", key: "door.groups", in: "must name at least one group"},
		{name: "door relay command not hex", file: "door:\n  relay:\n    open: ZZ\n", key: "door.relay.open", value: "ZZ", in: "not hex bytes"},
		{name: "door held open too long", file: "door:\n  relay:\n    hold: 90s\n", key: "door.relay.hold", value: "1m30s", in: "must be from 100ms to 1m0s"},
		{name: "door relay port of spaces", file: "mode: door\ndoor:\n  relay:\n    port: \"  \"\n", key: "door.relay.port", value: "  ", in: "required in mode door"},
		{name: "door card family", file: "door:\n  card_families: [\"campus\", \"octopus\"]\n", key: "door.card_families", value: "octopus", in: "not a card family"},
		{name: "short issuer id", file: "epurse:\n  own_issuers: [\"0001\"]\n", key: "epurse.own_issuers", value: "0001", in: "8 bytes"},
		{name: "purse", file: "epurse:\n  purse: ew\n", key: "epurse.purse", value: "ew", in: "ep, ed"},
		{name: "duration soon", file: "tap:\n  timeout: soon\n", key: "tap.timeout", value: "soon", in: "duration"},
		{name: "duration without unit", env: map[string]string{"CARDD_TAP_TIMEOUT": "3"}, key: "tap.timeout", value: "3", in: "with a unit"},
		{name: "negative duration", file: "tap:\n  timeout: -1s\n", key: "tap.timeout", value: "-1s", in: "positive"},
		{name: "empty store path", file: "store:\n  path: \"\"\n", key: "store.path", in: "must not be empty"},
		{name: "host url scheme", file: "host:\n  url: ftp://h\n  secret_file: /s\n", key: "host.url", value: "ftp://h", in: "http:// or https://"},
		{name: "host plain http off loopback", file: "host:\n  url: http://10.0.0.5:8710\n  secret_file: /s\n", key: "host.url", value: "http://10.0.0.5:8710", in: "plain http:// to a host off this machine"},
		{name: "host plain http to a name", env: map[string]string{"CARDD_HOST_URL": "http://host.example.com", "CARDD_HOST_SECRET_FILE": "/s"}, key: "host.url", value: "http://host.example.com", in: "host.insecure: true"},
		{name: "host CA file missing", file: "host:\n  url: https://10.0.0.5:8710\n  secret_file: /s\n  ca_file: /nonexistent/ca.pem\n", key: "host.ca_file", value: "/nonexistent/ca.pem", in: "no such file"},
		{name: "host CA file not PEM", file: "host:\n  url: https://10.0.0.5:8710\n  secret_file: /s\n  ca_file: /etc/hostname\n", key: "host.ca_file", value: "/etc/hostname", in: "holds no PEM certificate"},
		{name: "host pin short", file: "host:\n  url: https://10.0.0.5:8710\n  secret_file: /s\n  pin_sha256: abcd\n", key: "host.pin_sha256", value: "abcd", in: "64 hex digits or 44 characters of base64"},
		{name: "host pin not hex", env: map[string]string{"CARDD_HOST_URL": "https://h.example.com", "CARDD_HOST_SECRET_FILE": "/s", "CARDD_HOST_PIN_SHA256": strings.Repeat("g", 64)}, key: "host.pin_sha256", value: strings.Repeat("g", 64), in: "SubjectPublicKeyInfo"},
		{name: "host pin with plain http", file: "host:\n  url: http://127.0.0.1:8710\n  secret_file: /s\n  pin_sha256: \"" + strings.Repeat("ab", 32) + "\"\n", key: "host.pin_sha256", value: strings.Repeat("ab", 32), in: "needs an https:// host.url"},
		{name: "host insecure not a bool", env: map[string]string{"CARDD_HOST_INSECURE": "maybe"}, key: "host.insecure", value: "maybe", in: "true or false"},
		{name: "host without secret", file: "host:\n  url: https://host.example.com\n", key: "host.secret_file", in: "required when host.url is set"},
		{name: "api listen", file: "api:\n  listen: localhost\n", key: "api.listen", value: "localhost", in: "host:port"},
		{name: "exposed api without token", file: "api:\n  listen: \":8711\"\n", key: "api.token_file", in: "not a loopback address"},
		{name: "allowed host URL", file: "api:\n  allowed_hosts: [\"http://kiosk.lan\"]\n", key: "api.allowed_hosts", value: "http://kiosk.lan", in: "entry 1: must be a host name or address with an optional :port, not a URL"},
		{name: "allowed host wildcard", env: map[string]string{"CARDD_API_ALLOWED_HOSTS": "kiosk.lan,*.lan"}, key: "api.allowed_hosts", value: "*.lan", in: "entry 2: wildcards are not allowed"},
		{name: "allowed host port", file: "api:\n  allowed_hosts: [\"kiosk.lan:0\"]\n", key: "api.allowed_hosts", value: "kiosk.lan:0", in: "port must be a number 1..65535"},
		{name: "allowed host bare IPv6 with port", file: "api:\n  allowed_hosts: [\"fe80::1:8711:x\"]\n", key: "api.allowed_hosts", value: "fe80::1:8711:x", in: "in brackets"},
		{name: "allowed host name", file: "api:\n  allowed_hosts: [\"kiosk_3.lan\"]\n", key: "api.allowed_hosts", value: "kiosk_3.lan", in: "'_' is not allowed in a host name"},
		{name: "allowed host empty label", file: "api:\n  allowed_hosts: [\"kiosk..lan\"]\n", key: "api.allowed_hosts", value: "kiosk..lan", in: "dot-separated part"},
		{name: "unknown key", file: "reader:\n  card_patern: x\n", key: "reader.card_patern", value: "x", in: "unknown key in"},
		{name: "unknown section", file: "scanner:\n  port: /dev/ttyS0\n", key: "scanner.port", value: "/dev/ttyS0", in: "unknown key"},
		{name: "unknown parity", file: "printer:\n  parity: odds\n", key: "printer.parity", value: "odds", in: "none, odd, even, mark, space"},
		{name: "baud 0", file: "printer:\n  baud: 0\n", key: "printer.baud", value: "0", in: "line speed"},
		{name: "missing port", file: "printer:\n  enabled: true\n", key: "printer.port", value: "", in: "required when printer.enabled is true"},
		{name: "enabled not a bool", file: "printer:\n  enabled: yes please\n", key: "printer.enabled", value: "yes please", in: "true or false"},
		{name: "1.5 stop bits", file: "printer:\n  stop_bits: \"1.5\"\n", key: "printer.stop_bits", value: "1.5", in: "1, 2"},
		{name: "paper 76", file: "printer:\n  paper: 76\n", key: "printer.paper", value: "76", in: "58 or 80"},
		{name: "raster without font", file: "printer:\n  text: raster\n", key: "printer.font_file", in: "required when printer.text"},
		{name: "rtscts", env: map[string]string{"CARDD_PRINTER_FLOW_CONTROL": "rtscts"}, key: "printer.flow_control", value: "rtscts", in: "none, xonxoff"},
		{name: "leaf in wrong section", file: "card_pattern: x\n", key: "card_pattern", in: "did you mean reader.card_pattern?"},
		{name: "section given a scalar", file: "terminal: 5\n", key: "terminal", value: "5", in: "must be a section with the keys id"},
		{name: "flag value", args: []string{"--terminal-id", "1234"}, key: "terminal.id", value: "1234"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeFile(t, tc.file)}, args...)
			}
			c, err := Load(flags(t, args...))
			if err == nil {
				t.Fatalf("Load succeeded with %+v", c)
			}
			if c != nil {
				t.Errorf("Load returned a Config with an error")
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T %v is not a *ValidationError", err, err)
			}
			if ve.Key != tc.key {
				t.Errorf("Key = %q, want %q (error: %v)", ve.Key, tc.key, err)
			}
			if tc.value != "" && ve.Value != tc.value {
				t.Errorf("Value = %q, want %q", ve.Value, tc.value)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error has more than one line: %q", msg)
			}
			if !strings.HasPrefix(msg, "config: "+tc.key+" = ") || !strings.Contains(msg, tc.in) {
				t.Errorf("error %q: want prefix %q and to contain %q", msg, "config: "+tc.key+" = ", tc.in)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Reader.CardPattern = "["
	err := c.Validate()
	want := "config: reader.card_pattern = \"[\": invalid regexp: error parsing regexp: missing closing ]: `[`"
	if err == nil || err.Error() != want {
		t.Errorf("Validate() = %v\nwant %s", err, want)
	}
}

func TestSeveralErrorsInStableOrder(t *testing.T) {
	cleanEnv(t)
	path := writeFile(t, `
zz_typo: 1
tap:
  timeout: soon
log:
  level: loud
mode: atm
epurse:
  log_files: [0, 31]
aa_typo: 2
`)
	_, err := Load(flags(t, "--config", path))
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	wantKeys := []string{"mode", "epurse.log_files", "epurse.log_files", "log.level", "tap.timeout", "aa_typo", "zz_typo"}
	if len(lines) != len(wantKeys) {
		t.Fatalf("got %d lines, want %d:\n%v", len(lines), len(wantKeys), err)
	}
	for i, k := range wantKeys {
		if !strings.HasPrefix(lines[i], "config: "+k+" = ") {
			t.Errorf("line %d = %q, want it to name %s", i+1, lines[i], k)
		}
	}
}

func TestUnreadableFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("it asserts Linux error texts (no such file or directory, is a directory); Windows words them otherwise")
	}
	cleanEnv(t)
	dir := t.TempDir()
	noRead := filepath.Join(dir, "noread.yaml")
	if err := os.WriteFile(noRead, []byte("mode: pos\n"), 0o000); err != nil {
		t.Fatal(err)
	}
	badYAML := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badYAML, []byte("mode: pos\n  reader: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notMap := filepath.Join(dir, "list.yaml")
	if err := os.WriteFile(notMap, []byte("- mode\n- pos\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, in string
		skip           bool
	}{
		{"missing", filepath.Join(dir, "missing.yaml"), "no such file", false},
		{"directory", dir, "is a directory", false},
		{"permission denied", noRead, "permission denied", os.Geteuid() == 0},
		{"bad YAML", badYAML, "yaml:", false},
		{"not a mapping", notMap, "yaml:", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip {
				t.Skip("root reads any file")
			}
			_, err := Load(flags(t, "--config", tc.path))
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v is not a *FileError", err, err)
			}
			if fe.Path != tc.path {
				t.Errorf("Path = %q, want %q", fe.Path, tc.path)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "config: file \""+tc.path+"\": ") || !strings.Contains(msg, tc.in) {
				t.Errorf("message %q: want one line naming the file and containing %q", msg, tc.in)
			}
		})
	}
	_, err := Load(flags(t, "--config", filepath.Join(dir, "missing.yaml")))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file error %v does not match fs.ErrNotExist", err)
	}
}

func TestEnvLists(t *testing.T) {
	cleanEnv(t)
	t.Setenv("CARDD_EPURSE_AIDS", "A000000632010105, A00000000386980701,")
	t.Setenv("CARDD_EPURSE_LOG_FILES", "0x18,0x19, 5")
	t.Setenv("CARDD_EPURSE_LOG_RECORDS", "10")
	t.Setenv("CARDD_TAP_TIMEOUT", "1500ms")
	t.Setenv("CARDD_HOST_URL", "https://host.example.com/cardd")
	t.Setenv("CARDD_HOST_SECRET_FILE", "/etc/cardd/host.secret")
	c, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"A000000632010105", "A00000000386980701"}; !reflect.DeepEqual(c.EPurse.AIDs, want) {
		t.Errorf("AIDs = %q, want %q", c.EPurse.AIDs, want)
	}
	if want := []int{0x18, 0x19, 5}; !reflect.DeepEqual(c.EPurse.LogFiles, want) {
		t.Errorf("LogFiles = %v, want %v", c.EPurse.LogFiles, want)
	}
	if c.EPurse.LogRecords != 10 || c.Tap.Timeout != 1500*time.Millisecond {
		t.Errorf("LogRecords %d, Timeout %v", c.EPurse.LogRecords, c.Tap.Timeout)
	}
	if c.Host.URL != "https://host.example.com/cardd" || c.Host.SecretFile != "/etc/cardd/host.secret" {
		t.Errorf("Host = %+v", c.Host)
	}
	if got := c.EPurse.AIDBytes(); len(got) != 2 || len(got[0]) != 8 || got[0][0] != 0xA0 {
		t.Errorf("AIDBytes() = % X", got)
	}
}

func TestFileListForms(t *testing.T) {
	cleanEnv(t)
	path := writeFile(t, "epurse:\n  log_files: [0x18, \"0x19\", 7, \"030\"]\n  aids: A000000632010105\n")
	c, err := Load(flags(t, "--config", path))
	if err != nil {
		t.Fatal(err)
	}
	// "030" is decimal 30, not octal.
	if want := []int{0x18, 0x19, 7, 30}; !reflect.DeepEqual(c.EPurse.LogFiles, want) {
		t.Errorf("LogFiles = %v, want %v", c.EPurse.LogFiles, want)
	}
	if want := []string{"A000000632010105"}; !reflect.DeepEqual(c.EPurse.AIDs, want) {
		t.Errorf("AIDs = %q, want %q", c.EPurse.AIDs, want)
	}
}

func TestWriteEffective(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("it expects the secret file path unescaped; a Windows path's backslashes are escaped in the YAML")
	}
	cleanEnv(t)
	dir := t.TempDir()
	secretPath := filepath.Join(dir, "host.secret")
	const secret = "s3cret-hmac-key-do-not-print"
	if err := os.WriteFile(secretPath, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Default()
	c.Mode = ModePOS
	c.Reader = ReaderConfig{CardPattern: "^Virtual PCD 00 00$", SAMPattern: `^Virtual "PCD" 00 01\b`}
	c.Host = HostConfig{URL: "https://host.example.com", SecretFile: secretPath}
	c.API = APIConfig{Listen: "0.0.0.0:8711", TokenFile: filepath.Join(dir, "api.token"), AllowedHosts: []string{"kiosk-3.canteen.lan", "[fe80::1]:8711"}}
	c.EPurse.LogFiles = []int{0x18, 0x1E}
	c.Tap.Timeout = 2500 * time.Millisecond
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.WriteEffective(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, secret) {
		t.Errorf("output holds the secret:\n%s", out)
	}
	for _, want := range []string{"secret_file: \"" + secretPath + "\"", "log_files: [0x18, 0x1E]", "timeout: \"2.5s\"", "id: \"000000000001\""} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// The output is a configuration file that loads back to the same Config.
	path := filepath.Join(dir, "effective.yaml")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	back, err := Load(flags(t, "--config", path))
	if err != nil {
		t.Fatalf("loading WriteEffective's output: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(*back, c) {
		t.Errorf("round trip:\n got %+v\nwant %+v", *back, c)
	}
}

func TestSecretMasking(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]bool{
		"host.secret_file": false, "api.token_file": false, "store.path": false, "mode": false,
		"host.secret": true, "api.token": true, "host.api_key": true, "key_path": false,
	} {
		if got := isSecretKey(key); got != want {
			t.Errorf("isSecretKey(%q) = %v, want %v", key, got, want)
		}
	}
	// A value-holding secret key is masked in the YAML and in errors.
	if got := yamlValue("host.api_key", reflect.ValueOf("hunter2")); got != `"`+Masked+`"` {
		t.Errorf("yamlValue(host.api_key) = %s", got)
	}
	if got := maskValue("api.token", "hunter2"); got != Masked {
		t.Errorf("maskValue(api.token) = %s", got)
	}
}

func TestReadSecretFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows guards files with ACLs, not mode bits: this asserts Unix modes (docs/windows.md)")
	}
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // beat the umask
			t.Fatal(err)
		}
		return p
	}

	open := write("open.secret", "s3cret\n", 0o644)
	_, err := ReadSecretFile(open)
	var se *SecretFileError
	if !errors.As(err, &se) || se.Mode != 0o644 || se.Path != open {
		t.Fatalf("0644: err = %v, want a *SecretFileError with mode 0644", err)
	}
	if msg := err.Error(); !strings.Contains(msg, open) || !strings.Contains(msg, "0644") || !strings.Contains(msg, "chmod 600") {
		t.Errorf("message %q should name the file, the mode and the fix", msg)
	}
	if _, err := ReadSecretFile(write("group.secret", "s", 0o640)); err == nil {
		t.Error("0640 accepted")
	}

	got, err := ReadSecretFile(write("ok.secret", "s3cret\r\n\n", 0o600))
	if err != nil || string(got) != "s3cret" {
		t.Errorf("0600: %q, %v; want \"s3cret\"", got, err)
	}
	if got, err := ReadSecretFile(write("ro.secret", "tok", 0o400)); err != nil || string(got) != "tok" {
		t.Errorf("0400: %q, %v", got, err)
	}

	if _, err := ReadSecretFile(write("empty.secret", "\n", 0o600)); !errors.As(err, &se) || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: %v", err)
	}
	if _, err := ReadSecretFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &se) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadSecretFile(dir); !errors.As(err, &se) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
}

func TestReaderSelection(t *testing.T) {
	t.Parallel()
	const card, sam = "Virtual PCD 00 00", "Virtual PCD 00 01"
	for _, tc := range []struct {
		r             ReaderConfig
		cardR, samR   bool // for "Virtual PCD 00 00"
		cardR1, samR1 bool // for "Virtual PCD 00 01"
	}{
		{Default().Reader, true, false, true, false},
		{ReaderConfig{CardPattern: ".*", SAMPattern: "PCD 00 01$"}, true, false, false, true},
		{ReaderConfig{CardPattern: "^Virtual PCD 00 00$", SAMPattern: "^Virtual PCD 00 01$"}, true, false, false, true},
	} {
		if got := [4]bool{tc.r.IsCardReader(card), tc.r.IsSAMReader(card), tc.r.IsCardReader(sam), tc.r.IsSAMReader(sam)}; got != [4]bool{tc.cardR, tc.samR, tc.cardR1, tc.samR1} {
			t.Errorf("%+v: card/sam for %q and %q = %v", tc.r, card, sam, got)
		}
	}
}

// TestExampleFile keeps cardd.example.yaml loadable and complete.
func TestExampleFile(t *testing.T) {
	cleanEnv(t)
	c, err := Load(flags(t, "--config", "cardd.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Reader.SAMPattern == "" {
		t.Error("the example sets a SAM pattern")
	}
	data, err := os.ReadFile("cardd.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fv := viper.New()
	fv.SetConfigType("yaml")
	if err := fv.ReadConfig(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	inFile := map[string]bool{}
	for _, k := range fv.AllKeys() {
		inFile[k] = true
	}
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var d Config
	for _, f := range fields(&d) {
		if !inFile[f.key] && !fv.InConfig(f.key) { // an empty map is no key of AllKeys
			t.Errorf("cardd.example.yaml lacks %s", f.key)
		}
		if !strings.Contains(string(doc), "//\t"+f.key+" ") || !strings.Contains(string(doc), envName(f.key)) {
			t.Errorf("the key table in doc.go lacks %s or %s", f.key, envName(f.key))
		}
	}
}

// TestParallelLoads runs Loads concurrently: each has its own viper.
func TestParallelLoads(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("door mode is Linux-only and refused on Windows (docs/windows.md)")
	}
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, EnvPrefix) && !strings.HasPrefix(e, EnvConfig+"=") {
			t.Skip("CARDD_* set in the environment:", e)
		}
	}
	for _, mode := range []string{ModeKiosk, ModePOS, ModeDoor, ModeKiosk, ModePOS, ModeDoor} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, "mode: "+mode+"\nreader:\n  sam_pattern: SAM\ndoor:\n  relay:\n    port: /dev/ttyUSB0\n")
			for range 20 {
				c, err := Load(flags(t, "--config", path))
				if err != nil || c.Mode != mode {
					t.Fatalf("Load = %v, %v; want mode %s", c, err, mode)
				}
			}
		})
	}
}

// TestPSAMProfiles: psam.profile for every card, psam.families.<family>
// for its own cards, both parsed into the profiles the purchase uses.
func TestPSAMProfiles(t *testing.T) {
	cleanEnv(t)
	t.Setenv("CARDD_PSAM_FAMILIES_TUNION", "tunion key_index=3")
	c, err := Load(flags(t, "--config", writeFile(t, "psam:\n  profile: cityunion\n  families:\n    campus: cardd\n")))
	if err != nil {
		t.Fatal(err)
	}
	ps := c.PSAM.Profiles()
	if got := ps.For("shanghai").String(); got != "cityunion apps=1001 key_index=psam diversification=city security_code=on" {
		t.Errorf("shanghai (no profile of its own): %s", got)
	}
	if got := ps.For("tunion").String(); got != "tunion apps=8011,BDA8C9E8B2BF key_index=3 diversification=issuer security_code=off" {
		t.Errorf("tunion: %s", got)
	}
	if got := ps.For("campus").String(); got != "cardd key_index=1 diversification=one security_code=off" {
		t.Errorf("campus: %s", got)
	}
	def := Default()
	if got := def.PSAM.Profiles().For("tunion").String(); got != "cardd key_index=1 diversification=one security_code=off" {
		t.Errorf("default: %s", got)
	}
}

// A money key may be a YAML number with at most two decimals. The amount is
// read from the number as written, so one a float would round (1000.123,
// 0.1000000000000000001) is refused naming the key and the value, not paid
// as its neighbour; strings work as before.
func TestMoneyAsYAMLNumber(t *testing.T) {
	for _, tc := range []struct {
		file string
		want [3]int64 // balance cap, daily limit (-1 none), max purchase, in fen
	}{
		{"load:\n  balance_cap: 1000\n", [3]int64{100000, 20000, 50000}},
		{"load:\n  balance_cap: 1000.5\n", [3]int64{100050, 20000, 50000}},
		{"load:\n  balance_cap: 1000.50\npos:\n  daily_limit: 0\n  max_purchase: 0.01\n", [3]int64{100050, -1, 1}},
		{"load:\n  balance_cap: \"999.99\"\npos:\n  daily_limit: 19.9\n", [3]int64{99999, 1990, 50000}},
		{"load:\n  balance_cap: &cap 42949672.95\npos:\n  max_purchase: *cap\n", [3]int64{4294967295, 20000, 4294967295}},
	} {
		cleanEnv(t)
		file := tc.file
		c, err := Load(flags(t, "--config", writeFile(t, file)))
		if err != nil {
			t.Errorf("%q: %v", file, err)
			continue
		}
		if got := [3]int64{c.Load.BalanceCapFen(), c.POS.DailyLimitFen(), c.POS.MaxPurchaseFen()}; got != tc.want {
			t.Errorf("%q: fen %v, want %v", file, got, tc.want)
		}
	}
	for _, tc := range []struct{ file, key, value string }{
		{"load:\n  balance_cap: 1000.123\n", "load.balance_cap", "1000.123"},
		{"pos:\n  max_purchase: 0.1000000000000000001\n", "pos.max_purchase", "0.1000000000000000001"},
		{"pos:\n  daily_limit: 1e3\n", "pos.daily_limit", "1e3"},
		{"load:\n  balance_cap: 0x10\n", "load.balance_cap", "0x10"},
		{"load:\n  balance_cap: -5\n", "load.balance_cap", "-5"},
		{"load:\n  balance_cap: .inf\n", "load.balance_cap", ".inf"},
	} {
		cleanEnv(t)
		_, err := Load(flags(t, "--config", writeFile(t, tc.file)))
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Key != tc.key || ve.Value != tc.value {
			t.Errorf("%q: error %v, want %s = %q", tc.file, err, tc.key, tc.value)
			continue
		}
		if want := "config: " + tc.key + " = \"" + tc.value + "\": must be an amount in yuan"; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %q, want it to start %q", tc.file, err, want)
		}
	}
}
