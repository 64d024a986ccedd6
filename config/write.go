package config

import (
	"bufio"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Masked replaces a secret value in WriteEffective's output and in error
// messages.
const Masked = "<masked>"

// WriteEffective writes c as YAML, in the key order of the package
// documentation, for "cardd doctor" and the start-up log. The output is itself
// a valid configuration file that loads back to c.
//
// A key whose name contains "secret", "token" or "key" and that holds a value
// is written as Masked. Keys ending in _file or _path are shown: they hold
// where a secret is, which the operator needs to see to fix a wrong path, and
// a path gives nothing away. Today every secret key is such a path (the
// configuration never holds secrets itself); the masking is there so that a
// value-holding key added later cannot leak through this output.
func (c *Config) WriteEffective(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# cardd effective configuration (secret values masked; secret file paths shown)")
	section := ""
	for _, f := range fields(c) {
		if sec, leaf, ok := strings.Cut(f.key, "."); ok {
			if sec != section {
				fmt.Fprintf(bw, "%s:\n", sec)
				section = sec
			}
			fmt.Fprintf(bw, "  %s: %s\n", leaf, yamlValue(f.key, f.val))
			continue
		}
		fmt.Fprintf(bw, "%s: %s\n", f.key, yamlValue(f.key, f.val))
	}
	return bw.Flush()
}

// yamlValue renders one value as YAML. Strings are always double-quoted, so a
// terminal id like 000000000001 stays a string and a regexp needs no care;
// Go's quoting escapes are a subset of YAML's double-quoted ones.
func yamlValue(key string, v reflect.Value) string {
	if isSecretKey(key) && !v.IsZero() {
		return strconv.Quote(Masked)
	}
	switch {
	case v.Type() == durationType:
		return strconv.Quote(time.Duration(v.Int()).String())
	case v.Kind() == reflect.String:
		return strconv.Quote(v.String())
	case v.Kind() == reflect.Int:
		return strconv.FormatInt(v.Int(), 10)
	case v.Kind() == reflect.Struct:
		return yamlMapping(v)
	case v.Kind() == reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = strconv.Quote(k.String()) + ": " + yamlValue("", v.MapIndex(k))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case v.Kind() == reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			e := v.Index(i)
			if e.Kind() == reflect.Int {
				// The only list of numbers is epurse.log_files: SFIs are
				// written in hex everywhere else (specs, logs).
				parts[i] = fmt.Sprintf("0x%02X", e.Int())
				continue
			}
			parts[i] = yamlValue("", e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return strconv.Quote(fmt.Sprint(v.Interface()))
}

// isSecretKey reports whether key holds a secret value: its last part names a
// secret, token or key and does not end in _file or _path (a path to a secret
// is not a secret).
func isSecretKey(key string) bool {
	leaf := strings.ToLower(key[strings.LastIndexByte(key, '.')+1:])
	if strings.HasSuffix(leaf, "_file") || strings.HasSuffix(leaf, "_path") {
		return false
	}
	return strings.Contains(leaf, "secret") || strings.Contains(leaf, "token") || strings.Contains(leaf, "key")
}

// maskValue hides value in an error message when key holds a secret.
func maskValue(key, value string) string {
	if value != "" && isSecretKey(key) {
		return Masked
	}
	return value
}
