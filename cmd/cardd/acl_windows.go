package main

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// dataDirSDDL is the only access %ProgramData%\cardd allows: SYSTEM (the
// service) and the Administrators group, full control, inherited by every
// file made in it, and nothing inherited from ProgramData, whose own ACL
// lets every local user read and create files. The folder's owner becomes
// Administrators too: a user who made the folder before the install would
// otherwise still own it, and an owner may rewrite its access list. Windows keeps the journal,
// the host secret and the API token from other users with this, where Linux
// has the files' 0600 mode (which cardd does not judge on Windows).
const dataDirSDDL = "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

// restrictDataDir sets dataDirSDDL's owner and DACL on dir, the DACL
// protected from inheritance. It needs an elevated Administrator, as
// installing a service does.
func restrictDataDir(dir string) error {
	sd, err := windows.SecurityDescriptorFromString(dataDirSDDL)
	if err != nil {
		return fmt.Errorf("access list for %s: %w", dir, err)
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return fmt.Errorf("owner for %s: %w", dir, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("access list for %s: %w", dir, err)
	}
	err = windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION,
		owner, nil, dacl, nil)
	if err != nil {
		return fmt.Errorf("restricting %s to SYSTEM and Administrators: %w", dir, err)
	}
	return nil
}
