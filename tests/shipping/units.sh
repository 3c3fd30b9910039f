#!/usr/bin/env bash
# The systemd units in systemd/: each passes `systemd-analyze verify` with nothing to say (the
# templated one as each of its five instances), every command a unit runs is an executable in
# a scratch root laid out like the web and app AMIs, the proxy's sandbox rates OK or better in
# `systemd-analyze security`, and the proxy's ExecStartPre, run as written, refuses a broken
# configuration with the check's message and passes a valid one.
#
# Needs root (the ExecStartPre runs in the scratch root with chroot) and the debug binaries:
# cargo build --workspace --bins, with CARGO_TARGET_DIR as for that build.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/shipping/lib.sh
. "$here/lib.sh"

units_dir="$repo/systemd"
debug="${CARGO_TARGET_DIR:-$repo/target}/debug"
services=(api backoffice ocpp ocpi jobs)

need_root "units.sh"
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (Debian package systemd)"
[ -x "$debug/voltfleet-proxy" ] \
  || fail "$debug/voltfleet-proxy is missing: run cargo build --workspace --bins (with the same CARGO_TARGET_DIR) first"

work=$(mktemp -d "${TMPDIR:-/tmp}/voltfleet-units.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"

# install_program SOURCE PATH: the real file at PATH inside the scratch root (a hard link when
# it can be, the debug binaries being large).
install_program() {
  mkdir -p "$root$(dirname "$2")"
  ln "$1" "$root$2" 2>/dev/null || cp "$1" "$root$2"
}

# stand_in PATH WHAT: a small executable where a program that is not on this machine goes.
# verify only checks that a unit's commands exist and are executable; nothing runs these.
stand_in() {
  mkdir -p "$root$(dirname "$1")"
  printf '#!/bin/sh\necho "stand-in for %s in the units check; it does not run" >&2\nexit 1\n' "$2" >"$root$1"
  chmod 0755 "$root$1"
}

step "Scratch root in $root: merged /usr like Debian 12, this machine's systemd units (Debian 12's, as on the AMIs)"
mkdir -p "$root/usr/bin" "$root/usr/lib" "$root/usr/lib64" "$root/usr/lib/systemd" \
  "$root/etc/systemd/system" "$root/etc/voltfleet"
ln -s usr/bin "$root/bin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
install_program "$debug/voltfleet-proxy" /usr/bin/voltfleet-proxy
# The unit's /bin/kill: procps's, as on Debian 12 (the shell's builtin is no program).
[ -x /usr/bin/kill ] || fail "/usr/bin/kill is missing (Debian package procps)"
install_program /usr/bin/kill /usr/bin/kill
if [ -x /usr/bin/podman ]; then
  install_program /usr/bin/podman /usr/bin/podman
else
  stand_in /usr/bin/podman "podman (not installed here)"
fi
if [ -f "$repo/ami/web/fetch-proxy-config" ]; then
  install_program "$repo/ami/web/fetch-proxy-config" /usr/libexec/voltfleet/fetch-proxy-config
  chmod 0755 "$root/usr/libexec/voltfleet/fetch-proxy-config"
else
  stand_in /usr/libexec/voltfleet/fetch-proxy-config "fetch-proxy-config (ami/web/ has none yet)"
fi
units=()
for file in "$units_dir"/*.service; do
  cp "$file" "$root/etc/systemd/system/"
  units+=("$(basename "$file")")
done
[ "${#units[@]}" -gt 0 ] || fail "no unit files in $units_dir"

# Every unit by the name systemd knows it by: a template once per service.
names=()
for unit in "${units[@]}"; do
  case "$unit" in
    *@.service) for service in "${services[@]}"; do names+=("${unit%@.service}@$service.service"); done ;;
    *) names+=("$unit") ;;
  esac
done

for name in "${names[@]}"; do
  step "systemd-analyze verify $name"
  if ! output=$(systemd-analyze verify --root="$root" "$name" 2>&1) || [ -n "$output" ]; then
    printf '%s\n' "$output" >&2
    fail "systemd-analyze verify $name is not clean (above)"
  fi
done

# verify looks at ExecStart= and ExecStartPre= only; a reload or a stop must find its program too.
step "Every Exec*= program of every unit is an executable in the scratch root"
for unit in "${units[@]}"; do
  while IFS= read -r program; do
    [ -x "$root$program" ] || fail "$unit runs $program, which is not an executable in the scratch root"
    printf '    %-32s %s\n' "$unit" "$program"
  done < <(sed -n 's/^Exec[A-Za-z]*=[-@:+!]*\([^ ]*\).*/\1/p' "$units_dir/$unit" | sort -u)
done

step "systemd-analyze security --offline=true voltfleet-proxy.service"
report=$(SYSTEMD_COLORS=0 systemd-analyze security --offline=true --root="$root" --no-pager \
  voltfleet-proxy.service 2>&1) || { printf '%s\n' "$report" >&2; fail "systemd-analyze security failed"; }
overall=$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for voltfleet-proxy.service: *\([0-9.]*\) \([A-Z]*\).*/\1 \2/p')
[ -n "$overall" ] || { printf '%s\n' "$report" >&2; fail "no overall exposure level in the report (above)"; }
read -r exposure rating <<<"$overall"
printf '    exposure %s, rated %s (10 is fully exposed)\n' "$exposure" "$rating"
case "$rating" in
  OK | SAFE | PERFECT) ;;
  *)
    printf '%s\n' "$report" >&2
    fail "voltfleet-proxy.service rates $rating ($exposure); it must stay OK or better"
    ;;
esac

# The ExecStartPre line runs exactly as written, inside the scratch root, with the shared
# libraries the binary needs. Under systemd its standard error is what the journal shows.
step "voltfleet-proxy.service's ExecStartPre, as written, against a valid and a broken /etc/voltfleet/proxy.toml"
while IFS= read -r library; do
  cp --parents -L "$library" "$root"
done < <(ldd "$root/usr/bin/voltfleet-proxy" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
check_line=$(sed -n 's/^ExecStartPre=//p' "$units_dir/voltfleet-proxy.service")
[ -n "$check_line" ] || fail "voltfleet-proxy.service has no ExecStartPre="
case "$check_line" in
  *"/etc/voltfleet/proxy.toml"*) ;;
  *) fail "voltfleet-proxy.service's ExecStartPre ($check_line) does not check /etc/voltfleet/proxy.toml" ;;
esac
printf '    ExecStartPre=%s\n' "$check_line"

cat >"$root/etc/voltfleet/proxy.toml" <<'EOF'
[[listeners]]
address = "127.0.0.1:8080"

[upstreams.app]
peers = [{ address = "127.0.0.1:8101" }]

[[routes]]
path = "/"
upstream = "app"
EOF
# shellcheck disable=SC2086 # the line is split into words as systemd splits it
if ! output=$(chroot "$root" $check_line 2>&1); then
  printf '%s\n' "$output" >&2
  fail "the ExecStartPre check refused a valid configuration (above)"
fi
printf '    valid file: passes (%s)\n' "$output"

cat >"$root/etc/voltfleet/proxy.toml" <<'EOF'
[[listeners]]
address = "127.0.0.1:8080"

[upstreams.app]
peers = [{ address = "127.0.0.1:8101" }]

[[routes]]
path = "/"
upstream = "ap"
EOF
# shellcheck disable=SC2086
if output=$(chroot "$root" $check_line 2>&1); then
  fail "the ExecStartPre check accepted a route to an upstream that does not exist: $output"
fi
for expected in "the configuration has 1 error" 'routes[0].upstream: there is no upstream pool named "ap"'; do
  case "$output" in
    *"$expected"*) ;;
    *)
      printf '%s\n' "$output" >&2
      fail "the ExecStartPre check's message (above) does not say: $expected"
      ;;
  esac
done
printf '    broken file: refused, and the journal would show:\n'
printf '%s\n' "$output" | sed 's/^/        /'

step "OK: ${#names[@]} units verified (${names[*]}), the proxy rated $rating ($exposure), its start check refuses a broken file"
