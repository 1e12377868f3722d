# Sourced by scripts/setup and scripts/test: apt-get for the Debian packages Yimen uses.

# apt_install PACKAGE…: install quietly; when apt-get fails, say why (its last lines) and
# return non-zero, so the caller decides whether to go on.
apt_install() {
  local log
  log=$(mktemp)
  if { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >"$log" 2>&1; then
    rm -f "$log"
    return 0
  fi
  echo "yimen: could not install $* — apt-get said:" >&2
  grep -v '^[[:space:]]*$' "$log" | tail -n 6 | sed 's/^/  /' >&2
  if [ "$(id -u)" != 0 ]; then
    echo "  (apt-get needs root: run this as root or with sudo, or install the packages yourself)" >&2
  fi
  rm -f "$log"
  return 1
}
