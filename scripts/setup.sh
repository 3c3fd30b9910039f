#!/usr/bin/env bash
# Prepares a Debian machine to build, run and test voltfleet. Safe to run again: it installs
# only what is missing and starts MariaDB and Redis only when they are not answering.
# Needs root (or sudo) for the Debian packages.
set -euo pipefail

cd "$(dirname "$0")/.."
say() { printf '==> %s\n' "$*"; }

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

# Debian packages: the C toolchain pieces Pingora and aws-lc need, the servers the tests use,
# the browser the website's test drives (with a font for its screenshots), and what the
# shipping checks use: buildah, debootstrap, systemd-analyze and systemd-nspawn, packer, shellcheck.
packages=(cmake pkg-config mariadb-server mariadb-client redis-server redis-tools chromium fonts-dejavu-core
  buildah debootstrap systemd systemd-container packer shellcheck openssl curl)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "Installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "cargo is missing: install Rust with rustup (https://rustup.rs) and run again" >&2; exit 1; }

# Bounded wait for a command to succeed: wait_for SECONDS DESCRIPTION COMMAND...
wait_for() {
  local seconds=$1 what=$2; shift 2
  for _ in $(seq "$((seconds * 2))"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "$what did not come up within ${seconds}s" >&2
  return 1
}

mariadb_up() { mariadb-admin --protocol=socket -uroot ping; }
if ! mariadb_up >/dev/null 2>&1; then
  say "Starting MariaDB"
  $SUDO mkdir -p /run/mysqld && $SUDO chown mysql:mysql /run/mysqld 2>/dev/null || true
  $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_for 60 "MariaDB" mariadb_up
fi

# A test account reachable over TCP: a fresh Debian MariaDB lets root in only through the socket.
$SUDO mariadb --protocol=socket -uroot <<'SQL'
CREATE USER IF NOT EXISTS 'voltfleet_test'@'127.0.0.1' IDENTIFIED BY 'voltfleet_test';
CREATE USER IF NOT EXISTS 'voltfleet_test'@'localhost' IDENTIFIED BY 'voltfleet_test';
GRANT ALL PRIVILEGES ON *.* TO 'voltfleet_test'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO 'voltfleet_test'@'localhost';
CREATE DATABASE IF NOT EXISTS test;
SQL

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG; }
if ! redis_up >/dev/null 2>&1; then
  say "Starting Redis"
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/voltfleet-dev.log
  wait_for 30 "Redis" redis_up
fi

# The Python test clients: moto_server (AWS APIs on loopback) and the ocpp charge point library.
requirements=tests/requirements.txt
stamp=.venv/.requirements.sha256
wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  say "Installing the Python test clients into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r "$requirements"
  echo "$wanted" > "$stamp"
fi

# The browser test's driver: playwright-core and axe-core from tests/browser/package-lock.json,
# installed again whenever the lock file changes.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  say "Installing Node.js and npm"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "Node.js $(node --version) is too old for tests/browser: playwright-core needs Node.js 20 or later" >&2
  exit 1
fi
lock=tests/browser/package-lock.json
stamp=tests/browser/node_modules/.package-lock.sha256
wanted=$(sha256sum "$lock" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  say "Installing the browser test packages (npm ci in tests/browser)"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
  echo "$wanted" > "$stamp"
fi

say "Ready: MariaDB on 127.0.0.1:3306, Redis on 127.0.0.1:6379, test clients in .venv, Chromium and tests/browser/node_modules"
