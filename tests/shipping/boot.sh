#!/usr/bin/env bash
# The web root that install.sh baked, booted for real: systemd runs as PID 1 in a container
# (systemd-nspawn, sharing this host's network), so the units start as they will on an instance —
# hardening and all. At boot voltfleet-proxy-config fetches the configuration from SSM
# (moto_server on 127.0.0.1), voltfleet-proxy serves the website over TLS with the fetched
# certificate, `systemctl reload` hands the listeners to a new process without a refused
# request, and a broken configuration keeps the unit from starting, with the check's message in
# the journal.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/shipping/lib.sh
need_root "the boot check"
need_command systemd-nspawn systemd-container
need_command curl curl

repo=$PWD
work=$SHIPPING_CACHE/install
web=$work/web
moto=${VOLTFLEET_MOTO_SERVER:-$repo/.venv/bin/moto_server}
[ -x "$web/usr/bin/voltfleet-proxy" ] || fail "no installed web root in $web: run tests/shipping/install.sh first"
[ -x "$moto" ] || fail "no moto_server at $moto: run scripts/setup.sh"

moto_pid="" nspawn_pid="" init_pid=""
cleanup() {
  [ -n "$nspawn_pid" ] && kill "$nspawn_pid" 2>/dev/null && wait "$nspawn_pid" 2>/dev/null
  [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null
  return 0
}
trap cleanup EXIT
expect() {
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then printf '  ok  %s\n' "$what"; else fail "$what"; fi
}
# within COMMAND...: runs COMMAND inside the booted container (its mount and PID namespaces).
within() { nsenter --target "$init_pid" --mount --pid -- "$@"; }
prop() { within systemctl show --property="$2" --value "$1"; }
equals() { [ "$1" = "$2" ]; }
not_equals() { [ "$1" != "$2" ]; }
not() { ! "$@"; }
gone() { ! within kill -0 "$1"; }
journal_has() { local journal; journal=$(within journalctl -u "$1" --no-pager -o cat); grep -qF "$2" <<<"$journal"; }

step "Starting moto_server and storing the proxy's configuration in SSM"
start_moto "$moto" "$work/boot-moto.log"
https_port=$(free_port)
admin_port=$(free_port)
site_certificate "$web/tmp/boot-site.key" "$web/tmp/boot-site.crt"
proxy_site_config "$web/tmp/boot-proxy.toml" "$admin_port" "$https_port"
aws_env=(AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=eu-west-1)
put() {
  chroot "$web" /usr/bin/env -i PATH=/usr/bin:/bin "${aws_env[@]}" aws ssm put-parameter \
    --endpoint-url "http://127.0.0.1:$moto_port" --name "$1" --type "$3" --overwrite --value "file://$2" >/dev/null
}
put /voltfleet/boot/proxy/proxy.toml /tmp/boot-proxy.toml String
put /voltfleet/boot/proxy/tls/site.crt /tmp/boot-site.crt String
put /voltfleet/boot/proxy/tls/site.key /tmp/boot-site.key SecureString
# What the launch template's user data writes; the credentials stand in for the instance role.
printf '%s\n' "VOLTFLEET_PROXY_SSM_PATH=/voltfleet/boot/proxy/" \
  "VOLTFLEET_SSM_ENDPOINT_URL=http://127.0.0.1:$moto_port" "${aws_env[@]}" >"$web/etc/voltfleet/proxy.env"
rm -rf "$web/etc/voltfleet/proxy.toml" "$web/etc/voltfleet/proxy"
install -d -m 0750 "$web/etc/voltfleet/proxy"

step "Booting the web root with systemd as PID 1 (systemd-nspawn)"
systemd-nspawn --quiet --directory="$web" --register=no --keep-unit --boot >"$work/boot-console.log" 2>&1 &
nspawn_pid=$!
find_init() { init_pid=$(pgrep --parent "$nspawn_pid" --exact systemd); [ -n "$init_pid" ]; }
wait_until 30 "systemd to start in the container" find_init
booted() { state=$(within systemctl is-system-running 2>/dev/null || true); [ "$state" = running ] || [ "$state" = degraded ]; }
wait_until 90 "the container to finish booting" booted
within systemctl --failed --no-legend --plain | sed 's/^/  failed unit: /' || true

step "At boot: the configuration fetched, the proxy started under its unit's sandbox"
expect "voltfleet-proxy-config.service ran" equals "$(prop voltfleet-proxy-config.service Result)" success
within journalctl -u voltfleet-proxy-config --no-pager -o cat | grep fetch-proxy-config | sed 's/^/  /'
https() { curl -fsS --max-time 5 --resolve "www.example.test:$https_port:127.0.0.1" --cacert "$web/tmp/boot-site.crt" "https://www.example.test:$https_port$1"; }
serves_site() { local page; page=$(https /) && grep -q '<html' <<<"$page"; }
wait_until 30 "voltfleet-proxy to serve the website over TLS" https /
expect "the website answers over TLS with the certificate fetched from SSM" serves_site
expect "voltfleet-proxy.service is active" equals "$(prop voltfleet-proxy.service ActiveState)" active
user=$(within ps -o user= -p "$(prop voltfleet-proxy.service MainPID)")
expect "the proxy runs as voltfleet-proxy (it is $user)" test "$user" = voltfleet-proxy
within systemd-analyze security voltfleet-proxy.service --no-pager | tail -1 | sed 's/^/  /'

step "systemctl reload: a new process takes over the listeners while requests keep coming"
old_pid=$(prop voltfleet-proxy.service MainPID)
failures=0 served=0
(
  for _ in $(seq 400); do
    if https / >/dev/null 2>&1; then echo ok; else echo refused; fi
    sleep 0.02
  done
) >"$work/boot-reload-requests.log" &
requests=$!
sleep 1
within systemctl reload voltfleet-proxy.service || { within journalctl -u voltfleet-proxy --no-pager | tail -20; fail "systemctl reload voltfleet-proxy failed"; }
wait "$requests"
served=$(grep -c '^ok$' "$work/boot-reload-requests.log" || true)
failures=$(grep -c '^refused$' "$work/boot-reload-requests.log" || true)
printf '  %s requests served, %s failed across the reload\n' "$served" "$failures"
expect "no request failed across the reload" test "$failures" -eq 0
new_pid=$(prop voltfleet-proxy.service MainPID)
expect "the unit's main process is a new one ($old_pid -> $new_pid)" test "$new_pid" != "$old_pid" -a "$new_pid" != 0
wait_until 30 "the old process to exit after handing over" gone "$old_pid"
expect "the website is still served" serves_site

step "A broken configuration: the unit refuses to start and the journal says why"
printf '[server]\nthreads = "many"\n' >"$web/etc/voltfleet/proxy.toml"
# proxy.env is gone so that the config unit keeps the operator's file instead of fetching.
rm "$web/etc/voltfleet/proxy.env"
if within systemctl restart voltfleet-proxy.service 2>/dev/null; then fail "voltfleet-proxy started with a broken configuration"; fi
# Restart=on-failure retries every RestartSec, so the unit waits in auto-restart, not failed.
expect "the unit is not active" not_equals "$(prop voltfleet-proxy.service ActiveState)" active
expect "its start failed with the check's exit code" equals "$(prop voltfleet-proxy.service Result)" exit-code
expect "and nothing serves the website" not serves_site
within journalctl -u voltfleet-proxy --no-pager -o cat | grep -i 'invalid type' | sed 's/^/  journal: /'
expect "the journal has the config check's message" journal_has voltfleet-proxy 'server: invalid type: string "many"'

step "The web AMI's units work under systemd"
