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

ensure_mariadb() {
  if port_open 3306; then return 0; fi
  [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server mariadb-client || return 1
  say "starting MariaDB"
  if is_root; then
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  fi
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_port 3306 || { say "MariaDB did not come up"; return 1; }
  # The tests connect as root over TCP with no password, as on the development machines.
  mariadb -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; CREATE DATABASE IF NOT EXISTS test" || true
}

ensure_redis() {
  if port_open 6379; then return 0; fi
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server redis-tools || return 1
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port 6379 || { say "Redis did not come up"; return 1; }
}

# slapd is not started here: the tests start their own on a free port. It only has to be installed,
# without the package's own database (no configuration is asked for or written).
ensure_slapd() {
  if [ -x /usr/sbin/slapd ] && command -v ldapsearch >/dev/null 2>&1; then return 0; fi
  if is_root; then echo "slapd slapd/no_configuration boolean true" | debconf-set-selections; fi
  apt_install slapd ldap-utils || return 1
}

# sshd is not started here either: the SSH connector's tests start their own on a free port.
ensure_sshd() {
  if [ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null 2>&1 && command -v ssh >/dev/null 2>&1; then return 0; fi
  apt_install openssh-server openssh-client || return 1
}

ensure_client_tools() {
  command -v psql >/dev/null 2>&1 || apt_install postgresql-client || true
  command -v mariadb >/dev/null 2>&1 || apt_install mariadb-client || true
  command -v redis-cli >/dev/null 2>&1 || apt_install redis-tools || true
  # `systemd-analyze verify` checks deploy/systemd/*.service; it works without systemd as PID 1.
  command -v systemd-analyze >/dev/null 2>&1 || apt_install systemd || true
}

# The portal's browser tests drive Debian's Chromium through Playwright (never a downloaded browser).
ensure_chromium() {
  [ -x /usr/bin/chromium ] || apt_install chromium || return 1
}

ensure_postgres
ensure_mariadb
ensure_redis
ensure_slapd
ensure_sshd
ensure_client_tools
ensure_chromium
say "ready"
