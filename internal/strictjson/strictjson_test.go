package strictjson

import (
	"encoding/json"
	"strings"
	"testing"
)

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

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		body, err string // err "" means accepted
	}{
		{`{"rows": [{"id": "a", "amount_fen": 5, "Note": "n"}], "extra": {"k": "v"}, "raw": {"x": 1}, "inner": {"id": "b"}}`, ""},
		{`{"rows": [{"id": "a", "Amount_Fen": 5}]}`, `rows[0].Amount_Fen: unknown field "Amount_Fen": names are case-sensitive, did you mean "amount_fen"?`},
		{`{"Rows": []}`, `Rows: unknown field "Rows": names are case-sensitive`},
		{`{"rows": [{"id": "a", "note": "n"}]}`, `did you mean "Note"`},
		{`{"rows": [{"id": "a", "id": "b"}]}`, "rows[0].id: key given twice"},
		{`{"rows": [], "rows": []}`, "rows: key given twice"},
		{`{"extra": {"k": "v", "k": "w"}}`, "extra.k: key given twice"},
		{`{"raw": {"x": 1, "x": 2}}`, "raw.x: key given twice"},
		{`{"inner": {"id": "a", "ID": "b"}}`, `inner.ID: unknown field "ID"`},
		{`{"since": 1}`, `since: unknown field "since"`},
		{`{} {}`, "more than one JSON value"},
		{``, "body is empty"},
		{`{"rows": [{"amount_fen": "ten"}]}`, "cannot unmarshal"},
		{`{"rows": [`, "EOF"},
	} {
		var b batch
		err := Decode(strings.NewReader(c.body), &b)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.body, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one with %q", c.body, err, c.err)
		}
	}
	var b batch
	if err := Decode(strings.NewReader(`{"rows": [{"id": "a", "amount_fen": 5}], "inner": {"id": "b"}}`), &b); err != nil ||
		len(b.Rows) != 1 || b.Rows[0].AmountFen != 5 || b.Inner.ID != "b" {
		t.Fatalf("decoded %+v, %v", b, err)
	}
}
