package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"unsafe"

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

// dataDirSD is dataDirSDDL's owner and DACL.
func dataDirSD() (*windows.SECURITY_DESCRIPTOR, *windows.SID, *windows.ACL, error) {
	sd, err := windows.SecurityDescriptorFromString(dataDirSDDL)
	if err != nil {
		return nil, nil, nil, err
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return nil, nil, nil, err
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return nil, nil, nil, err
	}
	if dacl == nil {
		// A NULL DACL grants everyone everything: never set one.
		return nil, nil, nil, errors.New("dataDirSDDL has no DACL")
	}
	return sd, owner, dacl, nil
}

// restrictDataDir sets dataDirSDDL's owner and DACL on dir, the DACL
// protected from inheritance. It needs an elevated Administrator, as
// installing a service does.
func restrictDataDir(dir string) error {
	_, owner, dacl, err := dataDirSD()
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

// makeDataDir creates dir with dataDirSDDL from its first instant, so
// there is no moment when it has ProgramData's inherited, user-readable
// access list. It reports whether dir already existed; an existing dir is
// refused if it is a reparse point (a junction or a link, which a user can
// make in ProgramData without any privilege), and otherwise left as it is.
func makeDataDir(dir string) (existed bool, err error) {
	sd, _, _, err := dataDirSD()
	if err != nil {
		return false, fmt.Errorf("access list for %s: %w", dir, err)
	}
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return false, err
	}
	sa := &windows.SecurityAttributes{SecurityDescriptor: sd}
	sa.Length = uint32(unsafe.Sizeof(*sa))
	err = windows.CreateDirectory(p, sa)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
		return false, fmt.Errorf("creating %s: %w", dir, err)
	}
	attrs, err := windows.GetFileAttributes(p) // of the link itself, not its target
	if err != nil {
		return true, fmt.Errorf("%s: %w", dir, err)
	}
	if attrs&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
		return true, fmt.Errorf("%s is a junction or a link (a reparse point), which anyone may have made: remove it (rmdir) and run the command again", dir)
	}
	if attrs&windows.FILE_ATTRIBUTE_DIRECTORY == 0 {
		return true, fmt.Errorf("%s is a file, not a folder: remove it and run the command again", dir)
	}
	return true, nil
}

// secureDataDir gives dir, and everything already in it, Administrators as
// owner and dataDirSDDL's DACL. Restricting the folder alone is not enough:
// a user may have made a file in it before the install (ProgramData lets
// any user create files), and she would stay its owner with her own access
// list, able to edit the configuration the SYSTEM service runs. The folder
// is taken over first, so no one but an Administrator can add to it while
// its entries are walked. Each entry is opened, not followed, as a reparse
// point (FILE_FLAG_OPEN_REPARSE_POINT) and refused if it is one, or if it
// is a file with more than one hard link (its access list is shared with a
// name outside the folder); a file is opened exclusively, so no program
// keeps a handle it opened before (with the write access the old list gave
// it), and the folder is held, unshared for deletion, until the walk ends.
func secureDataDir(dir string) error {
	existed, err := makeDataDir(dir)
	if err != nil || !existed {
		return err
	}
	h, err := takeOver(dir, true)
	if err != nil {
		return err
	}
	// Held through the walk: no one may rename the folder away and put a
	// junction in its place meanwhile (the handle does not share delete).
	defer windows.CloseHandle(h)
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		h, err := takeOver(path, d.IsDir())
		if err == nil {
			windows.CloseHandle(h)
		}
		return err
	})
}

// takeOver gives path Administrators as owner and dataDirSDDL's protected
// DACL, through a handle to path itself (never a reparse point's target),
// and returns that handle open.
func takeOver(path string, dir bool) (windows.Handle, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, err
	}
	// Sharing is checked only when data (or delete) access is asked for,
	// hence FILE_READ_DATA (FILE_LIST_DIRECTORY for a folder). A file is
	// opened exclusively, so that no other open handle keeps the access its
	// old list gave. A folder's old handles cannot add to it once its list
	// denies that, and Explorer showing it must not stop the install, so a
	// folder is shared, except with a handle that may delete or rename it.
	access := uint32(windows.READ_CONTROL | windows.WRITE_DAC | windows.WRITE_OWNER | windows.FILE_READ_DATA)
	share := uint32(0)
	if dir {
		share = windows.FILE_SHARE_READ | windows.FILE_SHARE_WRITE
	}
	h, err := windows.CreateFile(p, access, share, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_OPEN_REPARSE_POINT|windows.FILE_FLAG_BACKUP_SEMANTICS, 0)
	switch {
	case errors.Is(err, windows.ERROR_SHARING_VIOLATION):
		return 0, fmt.Errorf("%s is open in another program (the service cardd? stop it): close it and run the command again", path)
	case errors.Is(err, windows.ERROR_ACCESS_DENIED):
		return 0, fmt.Errorf("%s: its access list shuts out Administrators, so someone else made it: take it (takeown /f %s), delete it and run the command again", path, path)
	case err != nil:
		return 0, fmt.Errorf("opening %s to restrict it: %w", path, err)
	}
	if err := restrictHandle(h, path); err != nil {
		windows.CloseHandle(h)
		return 0, err
	}
	return h, nil
}

// restrictHandle checks the entry open as h (checkEntry) and sets its
// owner and DACL.
func restrictHandle(h windows.Handle, path string) error {
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := checkEntry(path, info.FileAttributes, info.NumberOfLinks); err != nil {
		return err
	}
	_, owner, dacl, err := dataDirSD()
	if err != nil {
		return err
	}
	err = windows.SetSecurityInfo(h, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION,
		owner, nil, dacl, nil)
	if err != nil {
		return fmt.Errorf("restricting %s to SYSTEM and Administrators: %w", path, err)
	}
	return nil
}

// checkEntry refuses a reparse point (a junction or a symbolic link: the
// service would follow it out of the folder) and a file with more than one
// hard link.
func checkEntry(path string, attrs, links uint32) error {
	if attrs&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
		return fmt.Errorf("%s is a junction or a link (a reparse point), which anyone may have made: remove it and run the command again", path)
	}
	if attrs&windows.FILE_ATTRIBUTE_DIRECTORY == 0 && links > 1 {
		return fmt.Errorf("%s has %d hard links, so other names share its access list: remove it and run the command again", path, links)
	}
	return nil
}

// underProgramFiles reports whether exe is in %ProgramFiles% (the known
// folder, not the environment), whose access list lets only Administrators
// (and TrustedInstaller) change what is in it.
func underProgramFiles(exe string) (bool, string, error) {
	pf, err := windows.KnownFolderPath(windows.FOLDERID_ProgramFiles, 0)
	if err != nil {
		return false, "", fmt.Errorf("the Program Files folder: %w", err)
	}
	return pathUnder(exe, pf), pf, nil
}

// pathUnder reports whether path is inside dir, comparing as Windows does
// (without regard to case).
func pathUnder(path, dir string) bool {
	path, dir = filepath.Clean(path), filepath.Clean(dir)
	rel, err := filepath.Rel(strings.ToLower(dir), strings.ToLower(path))
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, `..\`) && !filepath.IsAbs(rel)
}
