# Shared by the scripts: install what cardd needs on Debian and make sure one
# pcscd with the vpcd virtual readers is running. Sourced, not run.

# Debian packages the demo and the tests need at run time and to build.
CARDD_PACKAGES=(pcscd libpcsclite-dev vsmartcard-vpcd pcsc-tools socat gcc pkg-config procps iproute2 curl openssl fonts-wqy-zenhei fonts-noto-cjk systemd)
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
