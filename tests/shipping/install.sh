#!/usr/bin/env bash
# The AMI install scripts, run for real: each tier's ami/<tier>/install.sh runs to completion as
# root inside a fresh debootstrap-made Debian 12 root (chroot) laid out as Packer's bake directory,
# then this script checks, from outside, what it left: users, binaries, units enabled, tuning
# files. On the web root it also fetches a configuration from SSM (moto_server on loopback) and
# sees a broken one refused; and it sees an install script stop on its first error, naming the step.
# The only difference from a bake: Amazon's CloudWatch agent package cannot be downloaded here
# (VOLTFLEET_CLOUDWATCH_AGENT_DEB=skip); its configuration is still installed and checked.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/shipping/lib.sh
need_root "the install-script check"

repo=$PWD
target=${CARGO_TARGET_DIR:-$repo/target}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
proxy_binary=$target/debug/voltfleet-proxy
image_archive=$SHIPPING_CACHE/artifacts/voltfleet-image.tar
moto=${VOLTFLEET_MOTO_SERVER:-$repo/.venv/bin/moto_server}
[ -x "$proxy_binary" ] || fail "no $proxy_binary: build first (cargo build --workspace --bins)"
[ -f "$image_archive" ] || fail "no $image_archive: run tests/shipping/image.sh first (it writes the image archive)"
[ -x "$moto" ] || fail "no moto_server at $moto: run scripts/setup.sh"
need_command chroot coreutils
need_command openssl openssl

work=$SHIPPING_CACHE/install
mkdir -p "$work"
mounted=()
moto_pid=""
cleanup() {
  [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null || true
  local index
  for ((index = ${#mounted[@]} - 1; index >= 0; index--)); do
    umount -R "${mounted[index]}" 2>/dev/null || umount -l "${mounted[index]}" 2>/dev/null || true
  done
}
trap cleanup EXIT

# new_root TIER: a fresh copy of the cached AMI-like root at $work/TIER, mounted for a chroot;
# sets $root (not a command substitution: the mounts must be remembered for the cleanup).
new_root() {
  root=$work/$1
  if mountpoint -q "$root"; then umount -R "$root" || umount -l "$root"; fi
  rm -rf "$root"
  mkdir -p "$root"
  tar -C "$root" -xf "$(debian_root_tar ami)"
  # A mount point of its own, as on a real host: podman's storage remounts / when loading images.
  mount --bind "$root" "$root" && mounted+=("$root")
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount --rbind /sys "$root/sys"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # Packages' maintainer scripts must not start daemons in a chroot (Debian's policy-rc.d).
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  # The bake directory, as Packer's file provisioners upload it.
  mkdir -p "$root/tmp/voltfleet-bake/artifacts"
  cp -R ami systemd "$root/tmp/voltfleet-bake/"
}

# in_root ROOT COMMAND...: runs COMMAND in the chroot with a clean, bake-like environment.
in_root() {
  local root=$1; shift
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
}

# run_install ROOT TIER [VERSION]: the tier's install script as the Packer provisioner runs it.
run_install() {
  local root=$1 tier=$2 bake_version=${3:-$version}
  in_root "$root" VOLTFLEET_VERSION="$bake_version" VOLTFLEET_CLOUDWATCH_AGENT_DEB=skip \
    VOLTFLEET_BAKE_IN_CHROOT=1 bash "/tmp/voltfleet-bake/ami/$tier/install.sh" /tmp/voltfleet-bake
}

expect() { # expect DESCRIPTION COMMAND...: a check that must hold.
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then printf '  ok  %s\n' "$what"; else fail "$what"; fi
}
is_enabled() { [ "$(in_root "$1" systemctl is-enabled "$2" 2>/dev/null)" = enabled ]; }
# mode_of ROOT PATH: mode and owner, named by the root's own users and groups.
mode_of() { chroot "$1" stat -c '%a %U:%G' "$2"; }
shared_checks() { # shared_checks ROOT TIER
  local root=$1 tier=$2
  expect "sysctl tuning in /etc/sysctl.d" test -s "$root/etc/sysctl.d/60-voltfleet.conf"
  expect "open-file limits in /etc/security/limits.d" grep -q "nofile *1048576" "$root/etc/security/limits.d/60-voltfleet.conf"
  expect "tcp_bbr loaded at boot" grep -qx tcp_bbr "$root/etc/modules-load.d/voltfleet.conf"
  expect "persistent, bounded journal" grep -q '^SystemMaxUse=' "$root/etc/systemd/journald.conf.d/60-voltfleet.conf"
  expect "CloudWatch agent configuration (valid JSON)" python3 -m json.tool "$root/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"
  expect "CloudWatch agent scrape configuration" test -s "$root/opt/aws/amazon-cloudwatch-agent/etc/voltfleet-prometheus.yaml"
  expect "release recorded" grep -qx "VOLTFLEET_VERSION=$version" "$root/etc/voltfleet/release"
  expect "tier recorded" grep -qx "VOLTFLEET_TIER=$tier" "$root/etc/voltfleet/release"
  expect "apt lists cleaned" test -z "$(find "$root/var/lib/apt/lists" -mindepth 1 -maxdepth 1 ! -name lock ! -name partial)"
}

step "Every sysctl key the AMIs set exists on this kernel (a misspelt key would be ignored at boot)"
while read -r key _; do
  expect "sysctl $key" test -e "/proc/sys/${key//.//}"
done < <(grep -E '^[a-z]' ami/common/sysctl.d/60-voltfleet.conf)

# ---------------------------------------------------------------------------------------------
step "Web tier: ami/web/install.sh in a fresh Debian root"
new_root web
web=$root
strip -o "$web/tmp/voltfleet-bake/artifacts/voltfleet-proxy" "$proxy_binary"
cp -R site "$web/tmp/voltfleet-bake/artifacts/site"
started=$SECONDS
run_install "$web" web >"$work/web-install.log" 2>&1 || { tail -30 "$work/web-install.log"; fail "the web install script failed (log above, whole log in $work/web-install.log)"; }
grep '^==> ' "$work/web-install.log" | sed 's/^/  /'
step "Web tier installed in $((SECONDS - started)) s; checking what it left"
expect "user voltfleet-proxy, a system user without login" bash -c "getent -s files passwd voltfleet-proxy >/dev/null; grep -q '^voltfleet-proxy:[^:]*:[0-9]*:[0-9]*:[^:]*:/nonexistent:/usr/sbin/nologin$' '$web/etc/passwd'"
expect "/usr/bin/voltfleet-proxy reports $version" bash -c "[ \"\$(chroot '$web' /usr/bin/voltfleet-proxy --version)\" = 'voltfleet-proxy $version' ]"
expect "the website in /usr/share/voltfleet/site" test -f "$web/usr/share/voltfleet/site/index.html"
expect "/etc/voltfleet/proxy is root:voltfleet-proxy 750" test "$(mode_of "$web" "/etc/voltfleet/proxy")" = "750 root:voltfleet-proxy"
expect "fetch-proxy-config installed" test -x "$web/usr/libexec/voltfleet/fetch-proxy-config"
expect "awscli installed for it" test -x "$web/usr/bin/aws"
for unit in voltfleet-proxy.service voltfleet-proxy-config.service; do
  expect "$unit enabled" is_enabled "$web" "$unit"
done
shared_checks "$web" web

step "Web tier: the configuration comes from SSM Parameter Store (moto_server on 127.0.0.1)"
start_moto "$moto" "$work/moto.log"
aws_env=(AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=eu-west-1)
put() { # put NAME FILE TYPE
  in_root "$web" "${aws_env[@]}" aws ssm put-parameter --endpoint-url "http://127.0.0.1:$moto_port" \
    --name "$1" --type "$3" --overwrite --value "file://$2" >/dev/null
}
site_certificate "$web/tmp/site.key" "$web/tmp/site.crt"
proxy_site_config "$web/tmp/proxy.toml" "$(free_port)" "$(free_port)"
put /voltfleet/ci/proxy/proxy.toml /tmp/proxy.toml String
put /voltfleet/ci/proxy/tls/site.crt /tmp/site.crt String
put /voltfleet/ci/proxy/tls/site.key /tmp/site.key SecureString
printf 'VOLTFLEET_PROXY_SSM_PATH=/voltfleet/ci/proxy/\nVOLTFLEET_SSM_ENDPOINT_URL=http://127.0.0.1:%s\n' "$moto_port" >"$web/etc/voltfleet/proxy.env"
fetch() { in_root "$web" "${aws_env[@]}" /usr/libexec/voltfleet/fetch-proxy-config; }
fetch >"$work/fetch.log" 2>&1 || { cat "$work/fetch.log"; fail "fetch-proxy-config failed"; }
sed 's/^/  /' "$work/fetch.log"
expect "proxy.toml written as in SSM" cmp "$web/tmp/proxy.toml" "$web/etc/voltfleet/proxy.toml"
expect "the TLS key written, decrypted" cmp "$web/tmp/site.key" "$web/etc/voltfleet/proxy/tls/site.key"
expect "proxy.toml is root:voltfleet-proxy 640" test "$(mode_of "$web" "/etc/voltfleet/proxy.toml")" = "640 root:voltfleet-proxy"
expect "the key is root:voltfleet-proxy 640" test "$(mode_of "$web" "/etc/voltfleet/proxy/tls/site.key")" = "640 root:voltfleet-proxy"
expect "the fetched configuration passes voltfleet-proxy -t" chroot "$web" /usr/bin/voltfleet-proxy -t -c /etc/voltfleet/proxy.toml

printf '[server]\nthreads = "many"\n' >"$web/tmp/broken.toml"
put /voltfleet/ci/proxy/proxy.toml /tmp/broken.toml String
if fetch >"$work/fetch-broken.log" 2>&1; then fail "fetch-proxy-config accepted a broken proxy.toml"; fi
sed 's/^/  /' "$work/fetch-broken.log"
expect "a broken configuration is refused" grep -q "not valid; the previous files are kept" "$work/fetch-broken.log"
expect "with the check's message" grep -q 'server: invalid type: string "many"' "$work/fetch-broken.log"
expect "and the previous proxy.toml is kept" cmp "$web/tmp/proxy.toml" "$web/etc/voltfleet/proxy.toml"
expect "and the previous TLS files are kept" cmp "$web/tmp/site.key" "$web/etc/voltfleet/proxy/tls/site.key"
kill "$moto_pid" 2>/dev/null || true
moto_pid=""

step "Web tier: an install script stops at its first error and names the step"
rm "$web/tmp/voltfleet-bake/ami/common/sysctl.d/60-voltfleet.conf"
if run_install "$web" web >"$work/web-broken.log" 2>&1; then fail "the web install script succeeded without its sysctl file"; fi
grep FAILED "$work/web-broken.log" | sed 's/^/  /'
expect "the failure names the step" grep -q "FAILED \[web\] during: installing kernel and limits tuning" "$work/web-broken.log"
expect "and nothing ran after it" bash -c "! grep -q 'installing the CloudWatch agent' '$work/web-broken.log'"
if run_install "$web" web 0.0.0-wrong >"$work/web-version.log" 2>&1; then fail "the web install script baked a binary of another version"; fi
expect "a binary of another version is refused" grep -q "reports 'voltfleet-proxy $version', but this bake is for version 0.0.0-wrong" "$work/web-version.log"

# ---------------------------------------------------------------------------------------------
step "App tier: ami/app/install.sh in a fresh Debian root"
new_root app
app=$root
cp "$image_archive" "$app/tmp/voltfleet-bake/artifacts/voltfleet-image.tar"
started=$SECONDS
run_install "$app" app >"$work/app-install.log" 2>&1 || { tail -30 "$work/app-install.log"; fail "the app install script failed (log above, whole log in $work/app-install.log)"; }
grep '^==> ' "$work/app-install.log" | sed 's/^/  /'
step "App tier installed in $((SECONDS - started)) s; checking what it left"
expect "podman installed" test -x "$app/usr/bin/podman"
expect "the image localhost/voltfleet:$version is in podman's store" in_root "$app" podman image exists "localhost/voltfleet:$version"
expect "and tagged localhost/voltfleet:current" in_root "$app" podman image exists localhost/voltfleet:current
image_user=$(in_root "$app" podman image inspect --format '{{ .User }}' "localhost/voltfleet:$version")
expect "user voltfleet with the image's uid:gid ($image_user)" bash -c "[ \"\$(chroot '$app' id -u voltfleet):\$(chroot '$app' id -g voltfleet)\" = '$image_user' ]"
expect "image.env names the image" grep -qx "VOLTFLEET_IMAGE=localhost/voltfleet:$version" "$app/etc/voltfleet/image.env"
expect "containers log to the journal" grep -q 'log_driver = "journald"' "$app/etc/containers/containers.conf.d/60-voltfleet.conf"
expect "voltfleet-migrate.service enabled" is_enabled "$app" voltfleet-migrate.service
for service in api backoffice ocpp ocpi jobs; do
  expect "voltfleet@$service.service enabled" is_enabled "$app" "voltfleet@$service.service"
  expect "/etc/voltfleet/$service.env is 600" test "$(mode_of "$app" "/etc/voltfleet/$service.env")" = "600 root:root"
done
shared_checks "$app" app

if run_install "$app" app 0.0.0-wrong >"$work/app-version.log" 2>&1; then fail "the app install script accepted an image of another version"; fi
expect "an image archive of another version is refused" grep -q "FAILED \[app\].*does not hold localhost/voltfleet:0.0.0-wrong" "$work/app-version.log"

step "The install scripts ran in both tiers' roots and left what the AMIs need"
