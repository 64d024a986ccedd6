package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvPrefix starts the name of every environment variable cardd reads.
const EnvPrefix = "CARDD_"

// EnvConfig names the configuration file when --config is not given.
const EnvConfig = EnvPrefix + "CONFIG"

// FlagConfig is the flag naming the configuration file.
const FlagConfig = "config"

// flagKeys are the keys that have a flag. The list is kept short on purpose:
// these are what an operator changes for one run (a test on the bench, a
// second terminal on one machine); everything else belongs in the file.
var flagKeys = []struct{ name, key, usage string }{
	{"mode", "mode", "tap workflow: kiosk, pos or door (default kiosk)"},
	{"terminal-id", "terminal.id", "terminal id, 12 hex digits (default 000000000001)"},
	{"reader-card", "reader.card_pattern", "regexp of the PC/SC reader(s) where cards are tapped (default .*)"},
	{"reader-sam", "reader.sam_pattern", "regexp of the PC/SC reader holding the PSAM (default none)"},
	{"log-level", "log.level", "log level: debug, info, warn or error (default info)"},
	{"log-format", "log.format", "log format: text or json (default text)"},
}

// RegisterFlags adds the flags cardd accepts for configuration keys to fs:
//
//	--config FILE     the YAML file (else $CARDD_CONFIG; neither: no file)
//	--mode            mode
//	--terminal-id     terminal.id
//	--reader-card     reader.card_pattern
//	--reader-sam      reader.sam_pattern
//	--log-level       log.level
//	--log-format      log.format
//
// The flags' own defaults are empty and [Load] only looks at flags that were
// set, so an unset flag never hides the file or the environment; the usage
// text shows the built-in default instead.
func RegisterFlags(fs *pflag.FlagSet) {
	fs.String(FlagConfig, "", "YAML configuration `file` (default $"+EnvConfig+"; none: built-in defaults, environment and flags only)")
	for _, f := range flagKeys {
		fs.String(f.name, "", fmt.Sprintf("%s [%s, $%s]", f.usage, f.key, envName(f.key)))
	}
}

// Load merges, in increasing precedence, the defaults, the YAML file named by
// --config (or $CARDD_CONFIG; no file when neither names one), the CARDD_*
// environment and the flags of [RegisterFlags] that were set on fs, then
// validates. fs may be nil (no flags).
//
// It returns a [*FileError] when the file cannot be read or parsed; otherwise
// the bad keys as [*ValidationError]s joined with errors.Join, in a stable
// order: wrongly typed and invalid values in key-table order, then unknown
// keys in the file, sorted. On error the Config is nil.
//
// Each call uses its own viper instance and reads no global state other than
// the environment, so Loads may run concurrently.
func Load(fs *pflag.FlagSet) (*Config, error) {
	v := viper.New()
	def := Default()
	for _, f := range fields(&def) {
		v.SetDefault(f.key, f.val.Interface())
		// viper's AutomaticEnv only answers for keys it is asked about and
		// never for Unmarshal; an explicit binding per key always works.
		if err := v.BindEnv(f.key, envName(f.key)); err != nil {
			return nil, err
		}
	}

	var verrs []*ValidationError
	var literals map[string]string // money keys given as YAML numbers, as written
	if path := configPath(fs); path != "" {
		file, err := readFile(path)
		if err != nil {
			return nil, err
		}
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(file)); err != nil {
			return nil, &FileError{Path: path, Err: errors.Unwrap(err)}
		}
		verrs = append(verrs, unknownKeys(path, file)...)
		literals = moneyLiterals(file)
	}

	if fs != nil {
		for _, fk := range flagKeys {
			if f := fs.Lookup(fk.name); f != nil && f.Changed {
				// Set is viper's highest layer, above env and file.
				v.Set(fk.key, f.Value.String())
			}
		}
	}

	c := Default()
	for _, f := range fields(&c) {
		raw := v.Get(f.key)
		if raw == nil {
			continue // YAML null: not set, the default stays
		}
		if lit, ok := literals[f.key]; ok && kindName(raw) == "number" {
			raw = lit // the file's number, as written: money is never a float
		}
		if bad := decode(f.val, raw); bad != nil {
			// The default stays in the field, so Validate does not report
			// this key a second time.
			value := display(raw)
			if bad.entry != nil {
				value = display(bad.entry) // like Validate: the bad entry, not the list
			}
			verrs = append(verrs, &ValidationError{Key: f.key, Value: maskValue(f.key, value), Reason: bad.reason})
		}
	}
	var joined interface{ Unwrap() []error }
	if err := c.Validate(); errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			var ve *ValidationError
			if errors.As(e, &ve) {
				verrs = append(verrs, ve)
			}
		}
	}
	if len(verrs) > 0 {
		order := map[string]int{}
		for i, f := range fields(&c) {
			order[f.key] = i
		}
		slices.SortStableFunc(verrs, func(a, b *ValidationError) int {
			ia, aok := order[a.Key]
			ib, bok := order[b.Key]
			switch {
			case aok && bok:
				return cmp.Compare(ia, ib)
			case aok != bok: // known keys first
				if aok {
					return -1
				}
				return 1
			}
			return strings.Compare(a.Key, b.Key)
		})
		errs := make([]error, len(verrs))
		for i, e := range verrs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	return &c, nil
}

// configPath is the file to read: --config when given (even empty, which means
// none), else $CARDD_CONFIG.
func configPath(fs *pflag.FlagSet) string {
	if fs != nil {
		if f := fs.Lookup(FlagConfig); f != nil && f.Changed {
			return f.Value.String()
		}
	}
	return os.Getenv(EnvConfig)
}

// readFile reads the configuration file. It is read here rather than through
// viper.SetConfigFile so that the file is YAML whatever its extension, and so
// that a missing file is an error, not a silent fallback to the defaults.
func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	return b, nil
}

// unknownKeys returns an error for each key in the file that is not a
// configuration key. The file is parsed on its own because viper's AllKeys
// mixes in the defaults and the environment.
func unknownKeys(path string, file []byte) []*ValidationError {
	fv := viper.New()
	fv.SetConfigType("yaml")
	if err := fv.ReadConfig(bytes.NewReader(file)); err != nil {
		return nil // already reported by the caller's parse
	}
	var c Config
	leaves := map[string]bool{}
	sections := map[string][]string{}
	for _, f := range fields(&c) {
		leaves[f.key] = true
		if sec, leaf, ok := strings.Cut(f.key, "."); ok {
			sections[sec] = append(sections[sec], leaf)
		}
	}
	var errs []*ValidationError
	for _, k := range fv.AllKeys() {
		if leaves[k] {
			continue
		}
		raw := fv.Get(k)
		if leafs, ok := sections[k]; ok {
			if raw != nil { // "terminal:" with nothing under it is just empty
				errs = append(errs, &ValidationError{Key: k, Value: display(raw),
					Reason: fmt.Sprintf("must be a section with the keys %s, got a %s", strings.Join(leafs, ", "), kindName(raw))})
			}
			continue
		}
		if underLeaf(k, leaves) {
			continue // "mode: {x: 1}": the decode of mode reports it
		}
		reason := "unknown key in " + path
		if s := suggest(k, leaves); s != "" {
			reason += " (did you mean " + s + "?)"
		}
		errs = append(errs, &ValidationError{Key: k, Value: maskValue(k, display(raw)), Reason: reason})
	}
	return errs
}

// underLeaf reports whether some prefix of key is a known leaf key.
func underLeaf(key string, leaves map[string]bool) bool {
	for i := range len(key) {
		if key[i] == '.' && leaves[key[:i]] {
			return true
		}
	}
	return false
}

// suggest returns the known key closest to an unknown one, when it is close
// enough to be the likely intent: the same name in another section, or a
// small edit away.
func suggest(key string, leaves map[string]bool) string {
	known := make([]string, 0, len(leaves))
	for k := range leaves {
		known = append(known, k)
	}
	slices.Sort(known) // stable answer on ties
	leaf := key[strings.LastIndexByte(key, '.')+1:]
	best, bestD := "", len(key)/4+2
	for _, k := range known {
		if k[strings.LastIndexByte(k, '.')+1:] == leaf {
			return k
		}
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// field is one configuration key and the settable field holding it.
type field struct {
	key string
	val reflect.Value
}

var durationType = reflect.TypeFor[time.Duration]()

// fields lists the keys of c in declaration order, from the mapstructure tags,
// so that the struct is the one list of keys: defaults, environment bindings,
// decoding, unknown-key detection and WriteEffective all follow it.
func fields(c *Config) []field {
	var out []field
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			key := prefix + t.Field(i).Tag.Get("mapstructure")
			fv := v.Field(i)
			if fv.Kind() == reflect.Struct && fv.Type() != durationType {
				walk(key+".", fv)
				continue
			}
			out = append(out, field{key: key, val: fv})
		}
	}
	walk("", reflect.ValueOf(c).Elem())
	return out
}

// envName is the environment variable for key: reader.card_pattern is
// CARDD_READER_CARD_PATTERN.
func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// decodeError is why a raw value does not fit its field; entry is the bad
// entry of a list, nil when the whole value is bad.
type decodeError struct {
	reason string
	entry  any
}

func badValue(format string, args ...any) *decodeError {
	return &decodeError{reason: fmt.Sprintf(format, args...)}
}

// decode stores raw (from the file, the environment, a flag or the defaults)
// into dst, or returns why it cannot. The conversions are strict on purpose:
// viper's weak typing would turn "terminal: {id: 000000000001}" (a YAML int,
// 1) into "1", and a bare "12" timeout into 12ns.
func decode(dst reflect.Value, raw any) *decodeError {
	switch {
	case dst.Type() == durationType:
		switch r := raw.(type) {
		case time.Duration:
			dst.SetInt(int64(r))
			return nil
		case string:
			d, err := time.ParseDuration(strings.TrimSpace(r))
			if err != nil {
				return badValue("must be a duration with a unit, like \"3s\" or \"500ms\"")
			}
			dst.SetInt(int64(d))
			return nil
		}
		return badValue("must be a duration with a unit, like \"3s\", got a %s", kindName(raw))
	case dst.Kind() == reflect.String:
		s, ok := raw.(string)
		if !ok {
			return badValue("must be a string, got a %s%s", kindName(raw), quoteHint(raw))
		}
		dst.SetString(s)
		return nil
	case dst.Kind() == reflect.Bool:
		switch r := raw.(type) {
		case bool:
			dst.SetBool(r)
			return nil
		case string:
			// The environment and flags carry text; YAML's yes/on are not
			// taken, so a typo is an error rather than a guess.
			switch strings.ToLower(strings.TrimSpace(r)) {
			case "true":
				dst.SetBool(true)
				return nil
			case "false":
				dst.SetBool(false)
				return nil
			}
		}
		return badValue("must be true or false")
	case dst.Kind() == reflect.Int:
		n, ok := toInt(raw)
		if !ok {
			return badValue("must be a whole number, got a %s", kindName(raw))
		}
		dst.SetInt(int64(n))
		return nil
	case dst.Type() == periodsType:
		return decodePeriods(dst, raw)
	case dst.Kind() == reflect.Map && dst.Type().Key().Kind() == reflect.String:
		return decodeMap(dst, raw)
	case dst.Type() == reflect.TypeFor[[]string]():
		items, ok := listOf(raw)
		if !ok {
			return badValue("must be a list of strings, got a %s", kindName(raw))
		}
		out := make([]string, 0, len(items))
		for i, it := range items {
			s, ok := it.(string)
			if !ok {
				return &decodeError{reason: fmt.Sprintf("entry %d must be a string, got a %s%s", i+1, kindName(it), quoteHint(it)), entry: it}
			}
			out = append(out, s)
		}
		dst.Set(reflect.ValueOf(out))
		return nil
	case dst.Type() == reflect.TypeFor[[]int]():
		items, ok := listOf(raw)
		if !ok {
			return badValue("must be a list of numbers, got a %s", kindName(raw))
		}
		out := make([]int, 0, len(items))
		for i, it := range items {
			n, ok := toInt(it)
			if !ok {
				return &decodeError{reason: fmt.Sprintf("entry %d must be a whole number, decimal or 0x hex", i+1), entry: it}
			}
			out = append(out, n)
		}
		dst.Set(reflect.ValueOf(out))
		return nil
	}
	// Only reachable when a field of a new type is added to Config without
	// teaching decode about it.
	panic("config: no decoder for " + dst.Type().String())
}

// listOf returns the entries of a list value. A string is split at commas,
// because the environment has no other way to spell a list; empty entries
// (a trailing comma) are dropped. A single scalar is a list of one.
func listOf(raw any) ([]any, bool) {
	switch r := raw.(type) {
	case []any:
		return r, true
	case []string:
		out := make([]any, len(r))
		for i, s := range r {
			out[i] = s
		}
		return out, true
	case []int:
		out := make([]any, len(r))
		for i, n := range r {
			out[i] = n
		}
		return out, true
	case string:
		var out []any
		for _, s := range strings.Split(r, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out, true
	case map[string]any, map[any]any, bool, nil:
		return nil, false
	}
	if _, ok := toInt(raw); ok {
		return []any{raw}, true
	}
	return nil, false
}

// toInt accepts Go/YAML integers and strings holding a decimal or 0x-prefixed
// hex number. A leading 0 is decimal, not octal as strconv's base 0 would have
// it: "030" meaning 24 would surprise anyone.
func toInt(raw any) (int, bool) {
	v := reflect.ValueOf(raw)
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n := v.Int()
		return int(n), int64(int(n)) == n
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n := v.Uint()
		return int(n), n <= uint64(^uint(0)>>1)
	case reflect.String:
		s := strings.TrimSpace(v.String())
		base := 10
		if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
			s, base = h, 16
		}
		n, err := strconv.ParseInt(s, base, 0)
		return int(n), err == nil
	}
	return 0, false
}

// quoteHint suggests quoting a YAML scalar that was read as a number or a
// boolean where a string was wanted (000000000001 is the number 1).
func quoteHint(raw any) string {
	if k := kindName(raw); k == "number" || k == "boolean" {
		return " (quote it in YAML)"
	}
	return ""
}

// kindName names the YAML kind of a decoded value for error messages.
func kindName(raw any) string {
	switch raw.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case map[string]any, map[any]any:
		return "section"
	}
	switch reflect.ValueOf(raw).Kind() {
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number"
	}
	return fmt.Sprintf("%T", raw)
}

// display renders a raw value for the Value of a ValidationError.
func display(raw any) string {
	switch r := raw.(type) {
	case string:
		return r
	case time.Duration:
		return r.String()
	case nil:
		return ""
	}
	if v := reflect.ValueOf(raw); v.Kind() == reflect.Slice {
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = display(v.Index(i).Interface())
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(raw)
}
