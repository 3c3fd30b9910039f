# shellcheck shell=bash
# Shared by the shipping checks (sourced, not run): logging, the cache directory, and Debian roots
# made with debootstrap, kept as tarballs so that later runs on the same machine start in seconds.

SHIPPING_CACHE="${VOLTFLEET_SHIPPING_CACHE:-/var/tmp/voltfleet-shipping}"
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${VOLTFLEET_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# A cached root older than this is made again, so that it follows Debian's point releases.
DEBIAN_ROOT_MAX_AGE_DAYS="${VOLTFLEET_DEBIAN_ROOT_MAX_AGE_DAYS:-14}"

step() { printf '==> %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# need_root WHAT: debootstrap, chroot and buildah's storage need root.
need_root() {
  [ "$(id -u)" -eq 0 ] || fail "$1 needs root (debootstrap, chroot and buildah); run make shipping as root or with sudo"
}

# need_command COMMAND PACKAGE: installs the Debian package when the command is missing.
need_command() {
  command -v "$1" >/dev/null 2>&1 && return 0
  step "Installing the Debian package $2 (for $1)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null \
    || fail "could not install the Debian package $2"
}

# debian_root_tar VARIANT: prints the path of a tarball of a fresh Debian root, making it first
# when it is missing or stale. VARIANT is `slim` (debootstrap's minbase, trimmed like the
# debian:bookworm-slim image) or `ami` (minbase plus what Debian's cloud images carry that the
# install scripts rely on: systemd, sudo, ca-certificates, curl).
debian_root_tar() {
  local variant=$1 include
  case "$variant" in
    slim) include="" ;;
    ami) include="systemd,systemd-sysv,dbus,sudo,ca-certificates,curl,gnupg,procps,iproute2,kmod" ;;
    *) fail "unknown Debian root variant: $variant (slim or ami)" ;;
  esac
  local tarball="$SHIPPING_CACHE/debian-$DEBIAN_SUITE-$variant.tar"
  if [ -s "$tarball" ] && [ -z "$(find "$tarball" -mtime "+$DEBIAN_ROOT_MAX_AGE_DAYS")" ]; then
    printf '%s\n' "$tarball"
    return 0
  fi
  need_root "making a Debian root"
  need_command debootstrap debootstrap
  mkdir -p "$SHIPPING_CACHE"
  local work
  work=$(mktemp -d "$SHIPPING_CACHE/root-$variant.XXXXXX")
  step "Making a Debian $DEBIAN_SUITE root ($variant) with debootstrap; cached in $tarball" >&2
  if ! debootstrap --variant=minbase ${include:+--include="$include"} \
      "$DEBIAN_SUITE" "$work/root" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1; then
    tail -20 "$work/debootstrap.log" >&2
    rm -rf "$work"
    fail "debootstrap of the $variant root failed (log above)"
  fi
  # What the slim image leaves out; the package lists come back with the first apt-get update.
  rm -rf "$work"/root/var/lib/apt/lists/* "$work"/root/var/cache/apt/*.bin \
    "$work"/root/var/cache/apt/archives/*.deb "$work"/root/var/log/*.log
  if [ "$variant" = slim ]; then
    rm -rf "$work"/root/usr/share/doc/* "$work"/root/usr/share/man/* "$work"/root/usr/share/info/*
  fi
  tar -C "$work/root" --numeric-owner -cf "$tarball.new" .
  mv "$tarball.new" "$tarball"
  rm -rf "$work"
  printf '%s\n' "$tarball"
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_until SECONDS DESCRIPTION COMMAND...: bounded wait for COMMAND to succeed.
wait_until() {
  local seconds=$1 what=$2; shift 2
  for _ in $(seq "$((seconds * 4))"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  fail "$what (waited ${seconds} s)"
}

# start_moto MOTO_SERVER LOG: moto_server on a free loopback port; sets moto_port and moto_pid
# (the caller's cleanup kills it).
start_moto() {
  moto_port=$(free_port)
  "$1" -H 127.0.0.1 -p "$moto_port" >"$2" 2>&1 &
  # shellcheck disable=SC2034 # read by the caller's cleanup
  moto_pid=$!
  wait_until 30 "moto_server to answer on 127.0.0.1:$moto_port" \
    curl -fs -o /dev/null "http://127.0.0.1:$moto_port/moto-api/"
}

# site_certificate KEY CERT: a self-signed certificate for www.example.test, valid two days.
site_certificate() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=www.example.test -addext subjectAltName=DNS:www.example.test \
    -keyout "$1" -out "$2" 2>/dev/null
}

# proxy_site_config FILE ADMIN_PORT HTTPS_PORT: a proxy.toml serving the installed website over
# TLS with the certificate the web AMI fetches to /etc/voltfleet/proxy/tls/.
proxy_site_config() {
  cat >"$1" <<TOML
[server]
threads = 1
grace_period = "2s"
[admin]
listen = "127.0.0.1:$2"
[[listeners]]
name = "https"
address = "127.0.0.1:$3"
[listeners.tls]
certificates = [{ cert = "/etc/voltfleet/proxy/tls/site.crt", key = "/etc/voltfleet/proxy/tls/site.key" }]
[static_sites.website]
root = "/usr/share/voltfleet/site"
[[routes]]
path = "/"
static = "website"
TOML
}
