// Package strictjson decodes a JSON request body the way a money API must:
// exactly one value, every object key spelt exactly as a field of the target
// (encoding/json would also take "Amount" for "amount"), no key twice in one
// object (encoding/json keeps the last, so two layers reading the same body
// could see two different amounts), no unknown field, nothing after the
// value. Anything else is refused with a typed error naming the key and where
// it is.
package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// MaxDepth is how deeply objects and arrays may nest. The bodies of the APIs
// are two levels deep; the bound keeps a hostile body from costing a deep
// recursion.
const MaxDepth = 32

// ErrEmpty is returned for a body with no value at all.
var ErrEmpty = errors.New("empty body: send a JSON value")

// ErrTrailing is returned when something follows the value.
var ErrTrailing = errors.New("data after the JSON value")

// ErrTooDeep is returned for a value nested deeper than [MaxDepth].
var ErrTooDeep = fmt.Errorf("JSON nested deeper than %d levels", MaxDepth)

// DuplicateKeyError is a key given twice in one object.
type DuplicateKeyError struct {
	Path string // where the object is: "" for the top, "sale" or "items[2]"
	Key  string
}

// Error names the key and where its object is.
func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("key %q given twice%s", e.Key, at(e.Path))
}

// CaseMismatchError is a key that names a field only when case is ignored.
type CaseMismatchError struct {
	Path  string
	Key   string // as sent
	Field string // as the API spells it
}

// Error names the key as sent and the field it was likely meant for.
func (e *CaseMismatchError) Error() string {
	return fmt.Sprintf("unknown field %q%s: field names are case-sensitive, did you mean %q?", e.Key, at(e.Path), e.Field)
}

// UnknownFieldError is a key that names no field.
type UnknownFieldError struct {
	Path string
	Key  string
}

// Error names the key and where its object is.
func (e *UnknownFieldError) Error() string {
	return fmt.Sprintf("unknown field %q%s", e.Key, at(e.Path))
}

func at(path string) string {
	if path == "" {
		return ""
	}
	return " in " + path
}

// Unmarshal checks data as described in the package documentation and then
// decodes it into v (a non-nil pointer) with encoding/json. On error v may
// have been partly filled only if the checks passed and encoding/json itself
// failed (a wrong type, say); callers must not use v after an error.
func Unmarshal(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("strictjson: Unmarshal needs a non-nil pointer, got %T", v)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return ErrEmpty
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers are only skipped here; no float rounding
	if err := check(dec, rv.Type().Elem(), "", 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			return err
		}
		return ErrTrailing
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields() // belt and braces: check already refused them
	return d.Decode(v)
}

// check reads one value from dec, whose target type is t (nil: anything,
// only duplicate keys are looked for).
func check(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar: its type is encoding/json's to check
	}
	if depth >= MaxDepth {
		return ErrTooDeep
	}
	t = target(t)
	switch delim {
	case '{':
		var fields map[string]reflect.Type
		var folded map[string]string
		var elem reflect.Type
		strict := false
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				fields, folded = structFields(t)
				strict = true
			case reflect.Map:
				elem = t.Elem()
			}
		}
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := tok.(string) // an object's keys are strings, or Token failed
			if seen[key] {
				return &DuplicateKeyError{Path: path, Key: key}
			}
			seen[key] = true
			ft := elem
			if strict {
				var known bool
				if ft, known = fields[key]; !known {
					if f, ok := folded[strings.ToLower(key)]; ok {
						return &CaseMismatchError{Path: path, Key: key, Field: f}
					}
					return &UnknownFieldError{Path: path, Key: key}
				}
			}
			if err := check(dec, ft, join(path, key), depth+1); err != nil {
				return err
			}
		}
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := check(dec, elem, path+"["+strconv.Itoa(i)+"]", depth+1); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// target is the type whose fields a JSON object must match: t without its
// pointers, or nil when anything goes (an interface, or a type that decodes
// itself).
func target(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface {
		return nil
	}
	if p := reflect.PointerTo(t); p.Implements(unmarshalerType) || p.Implements(textUnmarshalerType) {
		return nil
	}
	return t
}

type fieldSet struct {
	exact  map[string]reflect.Type // JSON name -> field type
	folded map[string]string       // lower-case JSON name -> JSON name
}

var fieldCache sync.Map // reflect.Type -> fieldSet

// structFields lists the JSON names of t's fields as encoding/json sees
// them: the tag's name, else the Go name; "-" and unexported fields left
// out; untagged embedded structs flattened.
func structFields(t reflect.Type) (map[string]reflect.Type, map[string]string) {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(fieldSet).exact, fs.(fieldSet).folded
	}
	fs := fieldSet{exact: map[string]reflect.Type{}, folded: map[string]string{}}
	var walk func(t reflect.Type, depth int)
	walk = func(t reflect.Type, depth int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			ft := f.Type
			if f.Anonymous && name == "" {
				et := ft
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if et.Kind() == reflect.Struct && depth < MaxDepth {
					walk(et, depth+1)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if _, dup := fs.exact[name]; dup && depth > 0 {
				continue // the shallower field wins, as in encoding/json
			}
			fs.exact[name] = ft
			fs.folded[strings.ToLower(name)] = name
		}
	}
	walk(t, 0)
	fieldCache.Store(t, fs)
	return fs.exact, fs.folded
}
