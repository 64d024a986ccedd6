package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/daemon"
)

func storePath(cfg *config.Config) string {
	if p, err := filepath.Abs(cfg.Store.Path); err == nil {
		return p
	}
	return cfg.Store.Path
}

// missingStore is the result for a journal file that is not there.
func missingStore(cfg *config.Config, path string) Result {
	if !daemon.KeepsJournal(cfg) {
		return skip("%s does not exist, and a kiosk keeps no journal without host.url or a printer", path)
	}
	return warn(fmt.Sprintf("%s does not exist yet", path),
		"cardd creates it (mode 0600, its directory 0700) when it first starts; if this terminal has run before, store.path points at the wrong file: the journal's unsent rows are money, find them")
}

// modeFinding is one file's mode judged.
type modeFinding struct {
	status Status
	text   string // "cardd.db 0644 (others can read it)"
}

// judgeDir judges the journal's directory: others must have no access, the
// group no write (0700 and 0750 are fine).
func judgeDir(name string, perm fs.FileMode) modeFinding {
	switch {
	case perm&0o007 != 0:
		return modeFinding{Fail, fmt.Sprintf("%s %04o (others can %s it)", name, perm, access(perm&0o007, true))}
	case perm&0o020 != 0:
		return modeFinding{Fail, fmt.Sprintf("%s %04o (its group can replace files in it)", name, perm)}
	}
	return modeFinding{Pass, fmt.Sprintf("%s %04o", name, perm)}
}

// judgeFile judges a journal file: 0600 is right; group read is a warning,
// anything for others or group write a failure.
func judgeFile(name string, perm fs.FileMode) modeFinding {
	switch {
	case perm&0o007 != 0:
		return modeFinding{Fail, fmt.Sprintf("%s %04o (others can %s it)", name, perm, access(perm&0o007, false))}
	case perm&0o020 != 0:
		return modeFinding{Fail, fmt.Sprintf("%s %04o (its group can write it)", name, perm)}
	case perm&0o040 != 0:
		return modeFinding{Warn, fmt.Sprintf("%s %04o (its group can read it)", name, perm)}
	}
	return modeFinding{Pass, fmt.Sprintf("%s %04o", name, perm)}
}

// access names the rwx bits of one class (shifted to the low 3 bits).
func access(bits fs.FileMode, dir bool) string {
	var a []string
	if bits&4 != 0 {
		a = append(a, "read")
	}
	if bits&2 != 0 {
		a = append(a, "write")
	}
	if bits&1 != 0 {
		if dir {
			a = append(a, "enter")
		} else {
			a = append(a, "execute")
		}
	}
	return strings.Join(a, " and ")
}

// checkStoreFiles judges the modes of the journal's directory, file and
// WAL siblings: they hold card numbers and balances.
func (r *run) checkStoreFiles(context.Context) Result {
	path := storePath(r.cfg)
	dir := filepath.Dir(path)
	dst, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return missingStore(r.cfg, path)
	}
	if err != nil {
		return fail(fmt.Sprintf("%s: %v", dir, err), "check store.path and the permissions of the directories above it")
	}
	if !modesMean {
		return skip("%s: on Windows access is by ACL, not mode, and this check reads no ACLs (%%ProgramData%%\\cardd is for administrators and SYSTEM)", path)
	}
	findings := []modeFinding{judgeDir(dir, dst.Mode().Perm())}
	var files []string
	for _, suffix := range []string{"", "-wal", "-shm"} {
		st, err := os.Stat(path + suffix)
		if err != nil {
			if suffix == "" && errors.Is(err, fs.ErrNotExist) {
				findings = append(findings, modeFinding{Pass, filepath.Base(path) + " not created yet"})
			}
			continue
		}
		f := judgeFile(filepath.Base(path+suffix), st.Mode().Perm())
		if f.status != Pass {
			files = append(files, path+suffix)
		}
		findings = append(findings, f)
	}
	worst := Pass
	texts := make([]string, len(findings))
	for i, f := range findings {
		texts[i] = f.text
		worst = worse(worst, f.status)
	}
	detail := strings.Join(texts, ", ")
	if worst == Pass {
		return pass("%s", detail)
	}
	var fix []string
	if findings[0].status != Pass {
		fix = append(fix, "chmod 700 "+dir)
	}
	if len(files) > 0 {
		fix = append(fix, "chmod 600 "+strings.Join(files, " "))
	}
	return Result{Status: worst, Detail: detail,
		Fix: strings.Join(fix, " && ") + " (the journal holds card numbers and balances: only the daemon's user may read it)"}
}

func worse(a, b Status) Status {
	rank := map[Status]int{Skip: 0, Pass: 1, Warn: 2, Fail: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// secretFile checks a secret file as ReadSecretFile reads it, and that it
// belongs to the user running the checks: cardd runs as one user and must
// be able to read it, and nobody else may. key names it in messages; how
// says how to make one. It returns the secret whenever this process could
// read it as cardd does, even when the check fails on the owner.
func (r *run) secretFile(key, path, how string) (Result, []byte) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fail(fmt.Sprintf("%s %s does not exist", key, path), how), nil
	}
	if err != nil {
		return fail(fmt.Sprintf("%s %s: %v", key, path, err), "check the path and the permissions of its directories"), nil
	}
	if !st.Mode().IsRegular() {
		return fail(fmt.Sprintf("%s %s is not a regular file (%v)", key, path, st.Mode().Type()), how), nil
	}
	perm := st.Mode().Perm()
	if !modesMean {
		secret, err := config.ReadSecretFile(path)
		if err != nil {
			return fail(oneLine(err.Error()), how), nil
		}
		return pass("%s: read; on Windows its ACL says who else may read it, which this check does not read", path), secret
	}
	if perm&0o077 != 0 {
		return fail(fmt.Sprintf("%s %s has mode %04o: its group or others can read the secret", key, path, perm),
			fmt.Sprintf("chmod 600 %s (and, since others could read it, consider issuing a new secret)", path)), nil
	}
	secret, err := config.ReadSecretFile(path)
	if err != nil {
		return fail(oneLine(err.Error()), how), nil
	}
	me := r.opts.euid()
	if uid, ok := fileUID(st); ok && uid != me {
		// Still usable by this process (root reads anything), so the host
		// check goes on with it: the owner is this check's own finding.
		return fail(fmt.Sprintf("%s %s is owned by %s, but the checks run as %s", key, path, userName(uid), userName(me)),
			fmt.Sprintf("chown %s %s if cardd runs as %s; if cardd runs as another user, run cardd doctor as that user (sudo -u USER cardd doctor --config FILE)", userLogin(me), path, userLogin(me))), secret
	}
	return pass("%s: mode %04o, owned by %s", path, perm, userName(me)), secret
}

// userName is "name (uid N)", or "uid N" when the user has no name.
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("%s (uid %d)", u.Username, uid)
	}
	return fmt.Sprintf("uid %d", uid)
}

// userLogin is the user's name for a command line, or the uid.
func userLogin(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

func (r *run) checkHostSecret(context.Context) Result {
	path := r.cfg.Host.SecretFile
	if path == "" {
		return skip("host.url is not set: no host secret")
	}
	res, secret := r.secretFile("host.secret_file", path,
		fmt.Sprintf("register the terminal on the host (cardhost terminal add --id %s --secret-out FILE) and install FILE here: install -m 600 -o USER FILE %s", r.cfg.Terminal.ID, path))
	r.secret = secret // for the host check
	return res
}

func (r *run) checkAPIToken(context.Context) Result {
	path := r.cfg.API.TokenFile
	if path == "" {
		return skip("api.token_file is not set: calls that change something through the local API on %s take a random token made at start (written to <store.path>.api for cardd pos); the kiosk page gets its own limited credential", r.cfg.API.Listen)
	}
	res, _ := r.secretFile("api.token_file", path,
		fmt.Sprintf("write a random token there: (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > %s), and give the POS app the same token (the kiosk page never needs it)", path))
	return res
}

// oneLine joins the lines of a multi-line message with "; ".
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
}
