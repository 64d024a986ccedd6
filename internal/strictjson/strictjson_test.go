package strictjson

import (
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Kind string `json:"kind"`
}

type Embedded struct {
	Note string `json:"note"`
}

type sample struct {
	Embedded
	Amount   string            `json:"amount"`
	PIN      string            `json:"pin,omitempty"`
	Items    []inner           `json:"items"`
	Sub      *inner            `json:"sub"`
	Labels   map[string]string `json:"labels"`
	Any      any               `json:"any"`
	When     time.Time         `json:"when"`
	Untagged int
	Skipped  string `json:"-"`
	hidden   string // unexported: not a JSON field
}

func TestAccepts(t *testing.T) {
	var s sample
	in := `{"amount":"3.00","pin":"1234","items":[{"kind":"a"},{"kind":"b"}],"sub":{"kind":"c"},
		"labels":{"x":"1","X":"2"},"any":{"k":[1,{"k":2}]},"when":"2026-12-03T10:00:00Z","Untagged":7,"note":"n"}` + "\n"
	if err := Unmarshal([]byte(in), &s); err != nil {
		t.Fatal(err)
	}
	if s.Amount != "3.00" || s.PIN != "1234" || len(s.Items) != 2 || s.Items[1].Kind != "b" || s.Sub.Kind != "c" ||
		s.Labels["X"] != "2" || s.Untagged != 7 || s.Note != "n" || s.When.Year() != 2026 {
		t.Errorf("decoded %+v", s)
	}
	if s.hidden != "" {
		t.Errorf("an unexported field was set: %q", s.hidden)
	}
	var m map[string]any
	if err := Unmarshal([]byte(`{"a":1,"A":2}`), &m); err != nil || len(m) != 2 {
		t.Errorf("a map takes keys differing in case: %v %v", m, err)
	}
}

func TestRefuses(t *testing.T) {
	var dup *DuplicateKeyError
	var cm *CaseMismatchError
	var unk *UnknownFieldError
	for _, tc := range []struct {
		in   string
		as   any // a pointer to the error type wanted, or an error for errors.Is
		want string
	}{
		{`{"Amount":"3.00"}`, &cm, `unknown field "Amount": field names are case-sensitive, did you mean "amount"?`},
		{`{"AMOUNT":"3.00"}`, &cm, `did you mean "amount"`},
		{`{"amount":"1.00","amount":"499.00"}`, &dup, `key "amount" given twice`},
		{`{"amount":"1.00","\u0061mount":"499.00"}`, &dup, `key "amount" given twice`},
		{`{"sub":{"kind":"a","kind":"b"}}`, &dup, `key "kind" given twice in sub`},
		{`{"items":[{"kind":"a"},{"Kind":"b"}]}`, &cm, `"Kind" in items[1]`},
		{`{"labels":{"x":"1","x":"2"}}`, &dup, `in labels`},
		{`{"any":{"k":1,"k":2}}`, &dup, `in any`},
		{`{"amonut":"1"}`, &unk, `unknown field "amonut"`},
		{`{"Skipped":"1"}`, &unk, `unknown field "Skipped"`},
		{`{"hidden":"1"}`, &unk, `unknown field "hidden"`},
		{`{"untagged":1}`, &cm, `did you mean "Untagged"`},
		{``, ErrEmpty, "empty body"},
		{" \n\t", ErrEmpty, "empty body"},
		{`{"amount":"1"} {}`, ErrTrailing, "data after"},
		{`{"amount":"1"}x`, nil, "invalid character"},
		{`{"amount":`, io.ErrUnexpectedEOF, "unexpected EOF"},
		{`{"amount":1}`, nil, "cannot unmarshal number"},
		{strings.Repeat(`{"any":`, 40) + `1` + strings.Repeat(`}`, 40), ErrTooDeep, "nested deeper"},
	} {
		var s sample
		err := Unmarshal([]byte(tc.in), &s)
		if err == nil {
			t.Errorf("%s: accepted", tc.in)
			continue
		}
		switch as := tc.as.(type) {
		case error:
			if !errors.Is(err, as) {
				t.Errorf("%s: %v, want %v", tc.in, err, as)
			}
		case nil:
		default:
			if !errors.As(err, as) {
				t.Errorf("%s: %T %v, want %T", tc.in, err, err, as)
			}
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %q, want it to say %q", tc.in, err, tc.want)
		}
	}
	if err := Unmarshal([]byte(`{}`), sample{}); err == nil {
		t.Error("a non-pointer target was accepted")
	}
}

type fuzzTarget struct {
	Amount string   `json:"amount"`
	PIN    string   `json:"pin,omitempty"`
	Kind   string   `json:"kind"`
	Items  []inner  `json:"items"`
	Sub    *inner   `json:"sub"`
	Count  int64    `json:"count"`
	Tags   []string `json:"tags"`
}

// FuzzUnmarshal: whatever the body, no panic; what is accepted is valid
// JSON, decodes to the same value with encoding/json, holds only exactly
// spelt fields, and survives its own re-encoding.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{`{"amount":"3.00"}`, `{"Amount":"3.00"}`, `{"amount":"1","amount":"2"}`,
		`{"kind":"balance"}`, `{"items":[{"kind":"a"}],"sub":{"kind":"b"},"count":3,"tags":["x"]}`, `null`, `{}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got fuzzTarget
		if Unmarshal(data, &got) != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		var std fuzzTarget
		if err := json.Unmarshal(data, &std); err != nil || !reflect.DeepEqual(got, std) {
			t.Fatalf("%q: strict %+v, encoding/json %+v (%v)", data, got, std, err)
		}
		var keys map[string]json.RawMessage
		if json.Unmarshal(data, &keys) == nil {
			for k := range keys {
				if _, ok := reflect.TypeFor[fuzzTarget]().FieldByNameFunc(func(n string) bool {
					f, _ := reflect.TypeFor[fuzzTarget]().FieldByName(n)
					name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
					return name == k
				}); !ok {
					t.Fatalf("%q: accepted key %q, no field is spelt so", data, k)
				}
			}
		}
		again, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var back fuzzTarget
		if err := Unmarshal(again, &back); err != nil || !reflect.DeepEqual(got, back) {
			t.Fatalf("re-encoded %s: %+v, %v", again, back, err)
		}
	})
}

// TestNestedShapes: the host's request bodies nest rows in arrays, maps and
// raw values; a repeated or case-folded key is refused at any depth.
func TestNestedShapes(t *testing.T) {
	type row struct {
		ID        string `json:"id"`
		AmountFen int64  `json:"amount_fen"`
		Note      string
	}
	type batch struct {
		Rows  []row             `json:"rows"`
		Extra map[string]string `json:"extra,omitempty"`
		Raw   json.RawMessage   `json:"raw,omitempty"`
		Inner *row              `json:"inner,omitempty"`
	}
	for _, c := range []struct {
		body string
		ok   bool
	}{
		{`{"rows": [{"id": "a", "amount_fen": 5, "Note": "n"}], "extra": {"k": "v"}, "raw": {"x": 1}, "inner": {"id": "b"}}`, true},
		{`{"rows": [{"id": "a", "Amount_Fen": 5}]}`, false},
		{`{"Rows": []}`, false},
		{`{"rows": [{"id": "a", "note": "n"}]}`, false},
		{`{"rows": [{"id": "a", "id": "b"}]}`, false},
		{`{"rows": [], "rows": []}`, false},
		{`{"extra": {"k": "v", "k": "w"}}`, false},
		{`{"raw": {"x": 1, "x": 2}}`, false},
		{`{"inner": {"id": "a", "ID": "b"}}`, false},
		{`{"since": 1}`, false},
		{`{} {}`, false},
		{``, false},
		{`{"rows": [{"amount_fen": "ten"}]}`, false},
		{`{"rows": [`, false},
	} {
		var b batch
		err := Unmarshal([]byte(c.body), &b)
		if c.ok != (err == nil) {
			t.Errorf("%s: error %v, want ok=%v", c.body, err, c.ok)
		}
	}
}
