#!/usr/bin/env bash
# Makes sure the servers the tests talk to are up on loopback. A server that is already running is left
# alone; a missing one is installed from Debian packages and started when we are root. Without root it
# only reports what is missing.
set -euo pipefail

is_root() { [ "$(id -u)" -eq 0 ]; }
say() { printf 'services: %s\n' "$*"; }
apt_updated=""
apt_install() {
  if ! is_root; then say "cannot install $* without root"; return 1; fi
  if [ -z "$apt_updated" ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  return 1
}

ensure_postgres() {
  if port_open 5432; then return 0; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then apt_install postgresql postgresql-client || return 1; fi
  say "starting PostgreSQL"
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  local conf="/etc/postgresql/$version/main/pg_hba.conf"
  if is_root && ! grep -q '^host all all 127.0.0.1/32 trust' "$conf"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$conf"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_port 5432 || { say "PostgreSQL did not come up"; return 1; }
}

ensure_client_tools() {
  command -v psql >/dev/null 2>&1 || apt_install postgresql-client || true
}

ensure_postgres
ensure_client_tools
say "ready"
