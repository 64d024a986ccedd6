// Package strictjson decodes one JSON object into a Go value and refuses
// what encoding/json lets through quietly: a name that matches a field only
// when case is ignored ("Amount" for "amount"), a key given twice (the last
// one would win, so a signed body could say two things), a field the type
// does not have, and anything after the value.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// Error is a body Decode refused, with the JSON path of the offence
// ("rows[2].amount_fen") when there is one.
type Error struct {
	Path   string
	Reason string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

// Decode reads all of r as one JSON value into v, a pointer. Object keys
// must be the exact JSON names of v's fields (the `json` tag, or the Go name
// when untagged), each at most once per object; a map's keys may be
// anything but are refused twice too. Errors are *Error, or encoding/json's
// own for a value of the wrong type.
func Decode(r io.Reader, v any) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("strictjson: Decode needs a non-nil pointer")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := walk(dec, rv.Type().Elem(), ""); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &Error{Reason: "more than one JSON value"}
	}
	dec = json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// walk consumes one value from dec, checking its objects' keys against t
// (nil: any type, keys only checked for repeats).
func walk(dec *json.Decoder, t reflect.Type, path string) error {
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return &Error{Path: path, Reason: "body is empty: want a JSON value"}
	}
	if err != nil {
		return &Error{Path: path, Reason: err.Error()}
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && t.Implements(reflect.TypeFor[json.Unmarshaler]()) || t != nil && reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		t = nil // its own decoding: only repeated keys are ours to refuse
	}
	switch tok {
	case json.Delim('{'):
		var fields map[string]reflect.Type
		var elem reflect.Type
		isStruct := t != nil && t.Kind() == reflect.Struct
		if isStruct {
			fields = fieldsOf(t)
		} else if t != nil && t.Kind() == reflect.Map {
			elem = t.Elem()
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return &Error{Path: path, Reason: err.Error()}
			}
			key := kt.(string)
			kpath := joinPath(path, key)
			if seen[key] {
				return &Error{Path: kpath, Reason: "key given twice"}
			}
			seen[key] = true
			ft := elem
			if isStruct {
				var ok bool
				if ft, ok = fields[key]; !ok {
					for name := range fields {
						if strings.EqualFold(name, key) {
							return &Error{Path: kpath, Reason: fmt.Sprintf("unknown field %q: names are case-sensitive, did you mean %q?", key, name)}
						}
					}
					return &Error{Path: kpath, Reason: fmt.Sprintf("unknown field %q", key)}
				}
			}
			if err := walk(dec, ft, kpath); err != nil {
				return err
			}
		}
		_, err := dec.Token() // '}'
		return err
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walk(dec, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldsOf maps the JSON names of a struct's fields, embedded ones
// included, to their types, as encoding/json names them.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for _, f := range reflect.VisibleFields(t) {
		if f.Anonymous || !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		if _, dup := out[name]; !dup || len(f.Index) == 1 {
			out[name] = f.Type
		}
	}
	return out
}
