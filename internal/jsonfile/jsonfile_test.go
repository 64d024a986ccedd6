package jsonfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

type sample struct {
	Name  string `json:"name"`
	Tries int    `json:"tries"`
}

func (s *sample) Validate() error {
	if s.Name == "" {
		return errors.New("name is missing")
	}
	return nil
}

func write(t *testing.T, body string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.json")
	if err := os.WriteFile(path, []byte(body), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

func TestLoadKeepsDefaults(t *testing.T) {
	s, err := Load(write(t, `{"name": "a"}`+"\n", 0o644), "sample file", sample{Tries: 3}, Options{})
	if err != nil || s.Name != "a" || s.Tries != 3 {
		t.Fatalf("Load = %+v, %v; want name a and the default tries 3", s, err)
	}
}

func TestLoadRefuses(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows guards files with ACLs, not mode bits: this asserts Unix modes (docs/windows.md)")
	}
	for name, c := range map[string]struct {
		body string
		perm os.FileMode
		opt  Options
		want string
	}{
		"unknown":       {`{"name": "a", "nmae": "b"}`, 0o600, Options{}, `unknown field "nmae"`},
		"trailing":      {`{"name": "a"} {"name": "b"}`, 0o600, Options{}, "after the JSON value"},
		"invalid":       {`{"tries": 1}`, 0o600, Options{}, "name is missing"},
		"empty":         {" \n", 0o600, Options{}, "the file is empty"},
		"wrong type":    {`{"name": 1}`, 0o600, Options{}, "cannot unmarshal"},
		"private, 0640": {`{"name": "a"}`, 0o640, Options{Private: true}, "mode 0640, readable by group or others: run chmod 600"},
	} {
		path := write(t, c.body, c.perm)
		s, err := Load(path, "sample file", sample{}, c.opt)
		var fe *Error
		if s != nil || !errors.As(err, &fe) || fe.Kind != "sample file" || fe.Path != path ||
			!strings.HasPrefix(err.Error(), "sample file "+path+": ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Load = %+v, %v; want an *Error naming the file and %q", name, s, err, c.want)
		}
	}
}

func TestLoadPrivateRefusesADirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir, "sample file", sample{}, Options{Private: true}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Load(dir) = %v", err)
	}
}

func TestLoadMissingSaysThePathOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.json")
	_, err := Load(path, "sample file", sample{}, Options{})
	if !errors.Is(err, fs.ErrNotExist) || strings.Count(err.Error(), path) != 1 {
		t.Fatalf("Load = %v; want fs.ErrNotExist, naming %s once", err, path)
	}
}

func TestSave(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows guards files with ACLs, not mode bits: this asserts Unix modes (docs/windows.md)")
	}
	path := filepath.Join(t.TempDir(), "s.json")
	if err := Save(path, "sample file", &sample{Name: "a", Tries: 2}, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", st.Mode(), err)
	}
	s, err := Load(path, "sample file", sample{}, Options{Private: true})
	if err != nil || *s != (sample{Name: "a", Tries: 2}) {
		t.Fatalf("read back %+v, %v", s, err)
	}
	err = Save(filepath.Join(path, "under-a-file.json"), "sample file", &sample{}, 0o600)
	var fe *Error
	if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), "sample file ") {
		t.Fatalf("Save into a file's path = %v; want an *Error", err)
	}
}
