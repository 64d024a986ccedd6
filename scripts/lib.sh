# Shared by the scripts: install what cardd needs on Debian and make sure one
# pcscd with the vpcd virtual readers is running. Sourced, not run.

# Debian packages the demo and the tests need at run time and to build.
# postgresql: the server binaries (/usr/lib/postgresql/N/bin) for the
# throwaway clusters of the host's PostgreSQL tests (pg_start); the "main"
# cluster the package may create and start is not used.
CARDD_PACKAGES=(pcscd libpcsclite-dev vsmartcard-vpcd pcsc-tools socat gcc pkg-config procps iproute2 curl openssl fonts-wqy-zenhei fonts-noto-cjk systemd postgresql)
# Installed with their recommends: Chromium, for the kiosk page's browser
# tests, was tried here that way only.
CARDD_PACKAGES_WITH_RECOMMENDS=(chromium)

log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi
}

ensure_packages() {
  local missing=()
  for p in "${CARDD_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  local missing_rec=()
  for p in "${CARDD_PACKAGES_WITH_RECOMMENDS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing_rec+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ] || [ ${#missing_rec[@]} -gt 0 ]; then
    as_root apt-get update -qq
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if [ ${#missing_rec[@]} -gt 0 ]; then
    log "installing ${missing_rec[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_rec[@]}" >/dev/null
  fi
}

ensure_go() {
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then export PATH=$PATH:/usr/local/go/bin; fi
  command -v go >/dev/null || die "Go is not installed: install Go 1.26 or newer (https://go.dev/doc/install), then run this again"
}

# readers prints the reader names pcscd knows, one a line.
readers() { timeout 10 pcsc_scan -r 2>/dev/null | sed -n 's/^[0-9]*: //p'; }

# ensure_pcscd starts pcscd when none runs (never a second one) and waits until
# the vpcd virtual readers are listed.
ensure_pcscd() {
  if pgrep -x pcscd >/dev/null; then
    log "pcscd already running (pid $(pgrep -x pcscd | head -1))"
  else
    log "starting pcscd"
    as_root pcscd </dev/null >/dev/null 2>&1
  fi
  local i
  for i in $(seq 1 50); do
    if readers | grep -q '^Virtual PCD 00 00'; then return 0; fi
    # A pcscd that was stopping when we looked is gone now: start ours.
    pgrep -x pcscd >/dev/null || { log "starting pcscd"; as_root pcscd </dev/null >/dev/null 2>&1; }
    # A pcscd started before vpcd was installed has not read its config yet.
    [ "$i" -eq 10 ] && as_root pcscd --hotplug >/dev/null 2>&1 || true
    sleep 0.2
  done
  die "pcscd runs but lists no 'Virtual PCD 00 00' reader; it was probably started before vsmartcard-vpcd was installed: restart it (kill \$(pgrep -x pcscd); pcscd) and run this again"
}

# pg_bindir prints the directory of PostgreSQL's server binaries: pg_config's
# when it holds initdb (Debian's pg_config comes with libpq-dev, which may be
# of another version than the server, or alone), else the newest
# /usr/lib/postgresql/VERSION/bin that does. internal/pgtest looks the same way.
pg_bindir() {
  local d
  d=$(timeout 10 pg_config --bindir 2>/dev/null || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
  for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV); do
    if [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
  done
  return 1
}

# pg_as runs a command as the cluster's user: postgres refuses to run as
# root, so root hands it to the postgres user that Debian's package creates.
# From the cluster's directory, which that user may enter.
pg_as() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd "$PG_DIR" && runuser -u postgres -- "$@")
  else
    (cd "$PG_DIR" && "$@")
  fi
}

# pg_start starts a throwaway PostgreSQL cluster for this shell and sets
#   PG_DIR         its directory: data/, sock/ (the unix socket), postgres.log
#   PG_PORT        its loopback TCP port, a free one
#   PG_URL         its superuser postgres over 127.0.0.1:PG_PORT, with a random
#                  password (scram-sha-256)
#   PG_SOCKET_URL  the same superuser over the unix socket (trusted there: no
#                  other user may enter sock/), for a command run in
#                  scripts/isolated, which has no network of its own
# Each argument is a server setting for this cluster (fsync=off). pg_stop,
# also fit for an EXIT trap, stops and removes it.
pg_start() {
  [ -z "${PG_DIR:-}" ] || die "pg_start: a cluster runs already in $PG_DIR"
  PG_BIN=$(pg_bindir) || die "no PostgreSQL server binaries (initdb) under pg_config --bindir or /usr/lib/postgresql/*/bin: run scripts/setup"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "no postgres user to run PostgreSQL as (it refuses root): run scripts/setup"
  fi
  # Under /var/tmp, not /tmp: scripts/isolated mounts a /tmp of its own, and
  # a command run inside it must still reach the socket.
  PG_DIR=$(mktemp -d /var/tmp/cardd-pg.XXXXXX)
  [ "$(id -u)" -ne 0 ] || chown postgres: "$PG_DIR"
  pg_as mkdir -m 700 "$PG_DIR/sock"
  local password
  password=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
  printf '%s\n' "$password" | pg_as sh -c 'umask 077; cat > pwfile'
  if ! pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --pwfile="$PG_DIR/pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-locale --no-sync >"$PG_DIR/initdb.log" 2>&1; then
    cat "$PG_DIR/initdb.log" >&2
    pg_stop
    die "initdb failed"
  fi
  rm -f "$PG_DIR/pwfile"
  {
    echo "# pg_start: loopback and the private socket only"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$PG_DIR/sock'"
    local s
    for s in "$@"; do echo "$s"; done
  } | pg_as sh -c 'cat >> data/postgresql.conf'
  # A port free when looked at may be taken before the server binds it: then
  # the server exits at once, pg_ctl says so, and another port is tried.
  local attempt
  for attempt in 1 2 3 4 5; do
    PG_PORT=$(pg_free_port)
    if pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -o "-p $PG_PORT" -w -t 60 start >/dev/null; then
      PG_URL="postgres://postgres:$password@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
      PG_SOCKET_URL="postgres://postgres@/postgres?host=$PG_DIR/sock&port=$PG_PORT"
      log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') in $PG_DIR: 127.0.0.1:$PG_PORT (password in PG_URL), socket $PG_DIR/sock, log $PG_DIR/postgres.log"
      return 0
    fi
    grep -q 'could not bind\|Address already in use' "$PG_DIR/postgres.log" || break
  done
  tail -20 "$PG_DIR/postgres.log" >&2
  pg_stop
  die "PostgreSQL did not start (attempt $attempt)"
}

# pg_free_port prints a loopback TCP port no socket listens on, below the
# kernel's ephemeral range (32768 and up), which outgoing connections use.
pg_free_port() {
  local port i
  for i in $(seq 1 50); do
    port=$((20000 + RANDOM % 12000))
    if [ -z "$(ss -Htln "sport = :$port")" ]; then echo "$port"; return 0; fi
  done
  die "no free TCP port found between 20000 and 32000"
}

# pg_stop stops the cluster pg_start started, fast (open transactions rolled
# back), and removes its directory. Without a cluster it does nothing, so
# it may run twice, or as an EXIT trap after a pg_start that failed.
pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  if [ -f "$PG_DIR/data/postmaster.pid" ]; then
    pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 10 stop >/dev/null 2>&1 ||
      kill -KILL "$(head -1 "$PG_DIR/data/postmaster.pid")" 2>/dev/null || true
  fi
  rm -rf -- "$PG_DIR"
  log "PostgreSQL stopped, $PG_DIR removed"
  unset PG_DIR PG_PORT PG_URL PG_SOCKET_URL
}

# deb_version prints the version of a build, fit for dpkg and for cardd
# version: $CARDD_VERSION when set (a test's "newer build"); else from the
# newest tag, v1.2.0 -> 1.2.0, 3 commits past it 1.2.0+3.gabc1234; before the
# first tag 0.0.0~git<commit time, UTC>.<short hash>, so that a later commit
# sorts higher and its package upgrades the older one. A "-" in the tag
# becomes "~" (v1.2.0-rc1 -> 1.2.0~rc1): dpkg would read "-rc1" as a Debian
# revision and sort it above 1.2.0, where "~" sorts below. Uncommitted
# changes add "dirty".
deb_version() {
  if [ -n "${CARDD_VERSION:-}" ]; then echo "$CARDD_VERSION"; return 0; fi
  local d dirty=""
  git diff --quiet HEAD 2>/dev/null || dirty=dirty
  if d=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
    d=$(sed -E 's/^v//; s/-([0-9]+)-g([0-9a-f]+)$/+\1.g\2/; y/-/~/' <<<"$d")
    if [ -n "$dirty" ]; then
      case "$d" in *+*) d="$d.$dirty" ;; *) d="$d+$dirty" ;; esac
    fi
    echo "$d"
    return 0
  fi
  local t h
  t=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S 2>/dev/null) || die "no git history to take a version from: set CARDD_VERSION"
  h=$(git rev-parse --short=8 HEAD)
  echo "0.0.0~git$t.$h${dirty:+.$dirty}"
}

# Debian packages for the windows/amd64 build and its tests (docs/windows.md):
# mingw-w64's C compiler for go-sqlite3's cgo, Wine to run cardd.exe and the
# test binaries. Not in CARDD_PACKAGES: only scripts/wintest needs them.
CARDD_WINDOWS_PACKAGES=(gcc-mingw-w64-x86-64 wine64)

# ensure_windows installs the Windows cross build's packages when missing;
# running it again only asks dpkg.
ensure_windows() {
  local missing=() p
  for p in "${CARDD_WINDOWS_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# What cross-building cardd for linux/arm64 and running it under qemu-user
# need (docs/arm64.md): the cross compiler and the arm64 C library headers
# for cgo, pcsc-lite's arm64 headers and library through multiarch (the
# arm64 binaries link it), the arm64 libc for qemu to load them with, and
# qemu-aarch64-static.
CARDD_ARM64_PACKAGES=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross libpcsclite-dev:arm64 libc6:arm64 qemu-user-static file)

# ensure_arm64 adds Debian's arm64 architecture to dpkg and installs
# CARDD_ARM64_PACKAGES. A multiarch package must be of the same version as
# its amd64 twin; when the mirror's arm64 side lags, apt would rather remove
# the installed amd64 package (libpcsclite1, and pcscd with it) than fail, so
# the install is simulated first and refused if it would remove anything.
ensure_arm64() {
  local added=
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    log "adding the arm64 architecture to dpkg (multiarch)"
    as_root dpkg --add-architecture arm64
    added=1
  fi
  local missing=() p
  for p in "${CARDD_ARM64_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || [ -n "$added" ] || return 0
  as_root apt-get update -qq
  [ ${#missing[@]} -gt 0 ] || return 0
  local plan removed
  plan=$(as_root env DEBIAN_FRONTEND=noninteractive apt-get -s install -y --no-install-recommends "${missing[@]}" 2>&1) ||
    die "apt-get cannot install the arm64 packages ${missing[*]}: $(tail -5 <<<"$plan")"
  removed=$(sed -n 's/^Remv \([^ ]*\).*/\1/p' <<<"$plan" | paste -sd' ' -)
  [ -z "$removed" ] ||
    die "installing ${missing[*]} would remove $removed (the arm64 and amd64 versions of a multiarch package differ on the mirror); refusing. Upgrade the amd64 packages first (apt-get upgrade) or wait for the mirror"
  log "installing ${missing[*]}"
  # Another apt (a second helper's setup) may hold dpkg's lock: wait for it.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
