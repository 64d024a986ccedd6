package main

import (
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
