// Package jsonfiletest checks that a loader built on jsonfile.Load is as
// strict as it says: the tests of each kind of file run the same refusals.
package jsonfiletest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardd/cardd/internal/jsonfile"
)

// Case is a file a loader must refuse, and a part of the error it must give.
type Case struct {
	Name string
	Body []byte
	Want string
}

// Good saves a file with save, checks that load takes it back, and returns
// its bytes: the file the cases of a test are made from.
func Good(t testing.TB, save, load func(path string) error) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "good.json")
	if err := save(path); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := load(path); err != nil {
		t.Fatalf("the good file: %v", err)
	}
	return good
}

// Replace is good with the first old replaced by new, for a Case's body; it
// fails the test when good has no old, so that a case cannot go stale.
func Replace(t testing.TB, good []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(good, []byte(old)) {
		t.Fatalf("the good file has no %q to replace", old)
	}
	return bytes.Replace(good, []byte(old), []byte(new), 1)
}

// Refusals are the cases every strict file refuses, made from good, a file
// the loader takes whose top-level object has the key key: an unknown
// field, key spelt in upper case, key given twice, and a second value after
// the first.
func Refusals(t testing.TB, good []byte, key string) []Case {
	t.Helper()
	var first string
	if i := bytes.Index(good, []byte(`"`+key+`"`)); i < 0 {
		t.Fatalf("the good file has no key %q", key)
	} else {
		first = string(good[i:])
	}
	return []Case{
		{"unknown field", Replace(t, good, "{", `{"colour": "red",`), `unknown field "colour"`},
		{"key in upper case", Replace(t, good, `"`+key+`"`, `"`+strings.ToUpper(key)+`"`), "case-sensitive"},
		{"key twice", Replace(t, good, "{", `{`+first[:strings.IndexAny(first, ",\n}")]+`,`), "given twice"},
		{"second value", append(bytes.Clone(good), []byte("{}\n")...), "after the JSON value"},
		{"empty", nil, "empty"},
	}
}

// Check writes each case to a file of mode perm in a temporary directory
// and checks that load refuses it with a *jsonfile.Error that names the file
// and says what is wrong.
func Check(t *testing.T, load func(path string) error, perm os.FileMode, cases ...Case) {
	t.Helper()
	dir := t.TempDir()
	for i, c := range cases {
		path := filepath.Join(dir, "file"+string(rune('a'+i))+".json")
		if err := os.WriteFile(path, c.Body, perm); err != nil {
			t.Fatal(err)
		}
		err := load(path)
		var fe *jsonfile.Error
		switch {
		case err == nil:
			t.Errorf("%s: loaded", c.Name)
		case !errors.As(err, &fe) || fe.Path != path:
			t.Errorf("%s: %v (%T), want a *jsonfile.Error naming %s", c.Name, err, err, path)
		case !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.Want):
			t.Errorf("%s: %q, want the path and %q", c.Name, err, c.Want)
		}
	}
}
