package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"
)

// checkDataDirDACL fails t unless sddl is a protected DACL granting SYSTEM
// and Administrators and no group of ordinary users.
func checkDataDirDACL(t *testing.T, sddl string) {
	t.Helper()
	if !strings.HasPrefix(sddl, "O:BA") {
		t.Errorf("security descriptor %s: the owner is not Administrators", sddl)
	}
	if !strings.Contains(sddl, "D:P") {
		t.Errorf("DACL %s is not protected from inheritance", sddl)
	}
	for _, who := range []string{";SY)", ";BA)"} {
		if !strings.Contains(sddl, who) {
			t.Errorf("DACL %s does not grant %s", sddl, who)
		}
	}
	for _, who := range []string{";BU)", ";WD)", ";AU)", ";IU)"} {
		if strings.Contains(sddl, who) {
			t.Errorf("DACL %s still grants %s", sddl, who)
		}
	}
}

// underWine reports whether the test runs under Wine, whose ntdll exports
// wine_get_version.
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// TestRestrictDataDir: the data folder ends with a protected DACL of SYSTEM
// and Administrators alone, so no other local user reads the journal or the
// secrets, whatever the parent folder allows. Wine 8 (CI) takes the call but
// keeps no DACL on its Unix files, so there only the access list as built
// and the call's success are checked.
func TestRestrictDataDir(t *testing.T) {
	sd, err := windows.SecurityDescriptorFromString(dataDirSDDL)
	if err != nil {
		t.Fatal(err)
	}
	checkDataDirDACL(t, sd.String())

	dir := t.TempDir()
	if err := restrictDataDir(dir); err != nil {
		t.Fatal(err)
	}
	if underWine() {
		t.Log("under Wine: the folder's DACL is not read back (Wine keeps none on Unix files)")
		return
	}
	got, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	checkDataDirDACL(t, got.String())
}

// plantedDataDir makes a data folder as a user could before the install:
// a configuration file and a subfolder with a file in it.
func plantedDataDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cardd")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cardd.yaml", filepath.Join("sub", "x")} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("api: {}\n"), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSecureDataDirTakesOverEntries: what was in the folder before the
// install gets Administrators as owner and the folder's list, so the user
// who made it keeps no access to what the SYSTEM service reads.
func TestSecureDataDirTakesOverEntries(t *testing.T) {
	dir := plantedDataDir(t)
	if err := secureDataDir(dir); err != nil {
		t.Fatal(err)
	}
	if underWine() {
		t.Log("under Wine: the entries' DACLs are not read back (Wine keeps none on Unix files)")
		return
	}
	for _, p := range []string{dir, filepath.Join(dir, "cardd.yaml"), filepath.Join(dir, "sub", "x")} {
		got, err := windows.GetNamedSecurityInfo(p, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
		if err != nil {
			t.Fatal(err)
		}
		checkDataDirDACL(t, got.String())
	}
}

// TestSecureDataDirRefusesHardLink: a file in the folder that is also a
// name elsewhere is refused, naming it.
func TestSecureDataDirRefusesHardLink(t *testing.T) {
	dir := plantedDataDir(t)
	if err := os.Link(filepath.Join(dir, "cardd.yaml"), filepath.Join(t.TempDir(), "mine.yaml")); err != nil {
		t.Fatal(err)
	}
	err := secureDataDir(dir)
	if err == nil || !strings.Contains(err.Error(), "cardd.yaml has 2 hard links") {
		t.Fatalf("secureDataDir = %v, want the hard-linked cardd.yaml refused", err)
	}
}

// TestSecureDataDirRefusesOpenFile: a file some program holds open (with
// the access its old list gave) is refused, so that handle cannot write on
// after the install.
func TestSecureDataDirRefusesOpenFile(t *testing.T) {
	dir := plantedDataDir(t)
	f, err := os.OpenFile(filepath.Join(dir, "cardd.yaml"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = secureDataDir(dir)
	if err == nil || !strings.Contains(err.Error(), "cardd.yaml is open in another program") {
		t.Fatalf("secureDataDir = %v, want the open cardd.yaml refused", err)
	}
}

// TestSecureDataDirRefusesFolderOpenForDelete: a handle that may rename
// the folder (its maker's, opened before the install) is refused, or she
// could move the folder away during the walk and put a junction there.
func TestSecureDataDirRefusesFolderOpenForDelete(t *testing.T) {
	dir := plantedDataDir(t)
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := windows.CreateFile(p, windows.DELETE, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_BACKUP_SEMANTICS, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer windows.CloseHandle(h)
	err = secureDataDir(dir)
	if err == nil || !strings.Contains(err.Error(), "is open in another program") {
		t.Fatalf("secureDataDir = %v, want the folder open for delete refused", err)
	}
}

// TestSecureDataDirRefusesLinks: a symbolic link as the folder or in it is
// refused, never followed. Making a symbolic link needs a privilege (or
// developer mode) on Windows; mklink /J junctions, which need none, are
// refused by the same reparse-point attribute.
func TestSecureDataDirRefusesLinks(t *testing.T) {
	target := plantedDataDir(t)
	asDir := filepath.Join(t.TempDir(), "cardd")
	if err := os.Symlink(target, asDir); err != nil {
		t.Skipf("cannot make a symbolic link here (%v); the reparse-point refusal is untested", err)
	}
	if _, err := os.Stat(asDir); err != nil {
		// Wine 8 makes a Unix link to the Windows path, which dangles, and
		// shows no Unix link as a reparse point.
		t.Skipf("this system's symbolic links do not work (%v, Wine's?); the reparse-point refusal is untested", err)
	}
	err := secureDataDir(asDir)
	if err == nil || !strings.Contains(err.Error(), "is a junction or a link") {
		t.Errorf("secureDataDir(a link) = %v, want it refused", err)
	}
	if _, err := makeDataDir(asDir); err == nil || !strings.Contains(err.Error(), "is a junction or a link") {
		t.Errorf("makeDataDir(a link) = %v, want it refused", err)
	}
	in := plantedDataDir(t)
	if err := os.Symlink(filepath.Join(target, "cardd.yaml"), filepath.Join(in, "token")); err != nil {
		t.Fatal(err)
	}
	err = secureDataDir(in)
	if err == nil || !strings.Contains(err.Error(), `token is a junction or a link`) {
		t.Errorf("secureDataDir(a link inside) = %v, want it refused", err)
	}
}

// TestMakeDataDir: a missing folder is made (with the list from its first
// instant), an existing one is reported and kept.
func TestMakeDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cardd")
	if existed, err := makeDataDir(dir); err != nil || existed {
		t.Fatalf("makeDataDir(missing) = %v, %v; want false, nil", existed, err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("the folder was not made: %v", err)
	}
	if existed, err := makeDataDir(dir); err != nil || !existed {
		t.Fatalf("makeDataDir(existing) = %v, %v; want true, nil", existed, err)
	}
	if !underWine() {
		got, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
		if err != nil {
			t.Fatal(err)
		}
		checkDataDirDACL(t, got.String())
	}
}

// TestPathUnder: the Program Files check compares without case and is not
// fooled by a sibling with the same prefix or by "..".
func TestPathUnder(t *testing.T) {
	pf := `C:\Program Files`
	for _, c := range []struct {
		path string
		want bool
	}{
		{`C:\Program Files\cardd\cardd.exe`, true},
		{`c:\program files\cardd.exe`, true},
		{`C:\Program Files Evil\cardd.exe`, false},
		{`C:\Program Files\..\cardd\cardd.exe`, false},
		{`C:\Program Files`, false},
		{`C:\cardd\cardd.exe`, false},
		{`D:\Program Files\cardd\cardd.exe`, false},
	} {
		if got := pathUnder(c.path, pf); got != c.want {
			t.Errorf("pathUnder(%s, %s) = %v, want %v", c.path, pf, got, c.want)
		}
	}
}
