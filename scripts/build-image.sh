#!/usr/bin/env bash
# Builds the voltfleet container image (Dockerfile) and writes the docker-archive that the app
# AMI loads (its bake directory's artifacts/voltfleet-image.tar).
#
#   scripts/build-image.sh                          compile in the image's Rust build stage
#   scripts/build-image.sh --binary target/release/voltfleet
#                                                   use a binary built on this machine
#
# Options:
#   --binary FILE   package FILE (a stripped copy) instead of compiling in the build stage;
#                   build it on Debian 12 or older, whose glibc the image has
#   --tool TOOL     buildah (default), podman or docker
#   --output FILE   where the docker-archive goes (default dist/voltfleet-image.tar)
#   --no-archive    build and tag only
#
# The image is tagged localhost/voltfleet:<version>, the version of the Cargo workspace; its
# labels carry that version and the git revision (with -dirty when tracked files have changes).
# buildah honours BUILDAH_ISOLATION and CONTAINERS_STORAGE_CONF from the environment.
set -euo pipefail

cd "$(dirname "$0")/.."
say() { printf '==> %s\n' "$*"; }
die() { printf 'build-image: %s\n' "$*" >&2; exit 1; }

binary="" tool=buildah output=dist/voltfleet-image.tar archive=yes
while [ "$#" -gt 0 ]; do
  case "$1" in
    --binary) [ "$#" -ge 2 ] || die "--binary needs a file"; binary=$2; shift 2 ;;
    --tool) [ "$#" -ge 2 ] || die "--tool needs buildah, podman or docker"; tool=$2; shift 2 ;;
    --output) [ "$#" -ge 2 ] || die "--output needs a file"; output=$2; shift 2 ;;
    --no-archive) archive=no; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
case "$tool" in
  buildah|podman|docker) ;;
  *) die "--tool must be buildah, podman or docker, not $tool" ;;
esac
command -v "$tool" >/dev/null || die "$tool is not installed (Debian: apt-get install $tool), or choose another with --tool"

# The version from cargo when it is here, else from the workspace's Cargo.toml.
if command -v cargo >/dev/null; then
  id=$(cargo pkgid --offline -p voltfleet 2>/dev/null) || id=$(cargo pkgid -p voltfleet) \
    || die "cargo cannot read the workspace's version (cargo pkgid -p voltfleet failed)"
  version=${id##*[#@]}
else
  version=$(sed -n '/^\[workspace\.package\]/,/^\[/{s/^version *= *"\(.*\)"/\1/p}' Cargo.toml)
fi
[ -n "$version" ] || die "found no version in Cargo.toml's [workspace.package]"

if revision=$(git rev-parse HEAD 2>/dev/null); then
  if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    revision="$revision-dirty"
  fi
else
  revision=unknown
fi
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
tag="localhost/voltfleet:$version"

work=$(mktemp -d)
trap 'rm -rf "$work"; rm -f "$output.new"' EXIT

args=(--build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "CREATED=$created"
      -f Dockerfile -t "$tag")
if [ -n "$binary" ]; then
  [ -x "$binary" ] || die "$binary is not an executable file"
  built=$("$binary" --version 2>/dev/null) || die "$binary --version failed: is it the voltfleet binary, built for this machine?"
  [ "$built" = "voltfleet $version" ] \
    || die "$binary says \"$built\", but the source tree is voltfleet $version; build it again from this tree"
  # The build context is a directory of its own holding only the binary, so nothing else of
  # the work tree is read.
  strip -o "$work/voltfleet" "$binary" 2>/dev/null || cp "$binary" "$work/voltfleet"
  chmod 0755 "$work/voltfleet"
  args+=(--target prebuilt "$work")
  say "Building $tag ($revision) with $tool from $binary"
else
  args+=(.)
  say "Building $tag ($revision) with $tool, compiling in the Rust build stage"
fi

# The HEALTHCHECK is kept only in Docker's image format; OCI's has no place for it.
case "$tool" in
  buildah) buildah bud --layers --format docker "${args[@]}" ;;
  podman) podman build --format docker "${args[@]}" ;;
  docker) docker build "${args[@]}" ;;
esac || die "$tool could not build the image (its output above says which step)"

# buildah 1.28 (and the podman built on it) takes a cached LABEL step even when the build
# arguments in it changed, and then tags the cached image whole, --label and all: a build with
# the same binary would keep an earlier build's revision and time. A step of its own, whose
# text holds the values, sets them for certain; it adds no layer.
mkdir "$work/labels"
cat > "$work/labels/Containerfile" <<EOF
FROM $tag
LABEL org.opencontainers.image.version="$version" \\
      org.opencontainers.image.revision="$revision" \\
      org.opencontainers.image.created="$created"
EOF
case "$tool" in
  buildah) buildah bud --quiet --layers --format docker -f "$work/labels/Containerfile" -t "$tag" "$work/labels" ;;
  podman) podman build --quiet --format docker -f "$work/labels/Containerfile" -t "$tag" "$work/labels" ;;
  docker) docker build --quiet -f "$work/labels/Containerfile" -t "$tag" "$work/labels" ;;
esac >/dev/null || die "$tool could not set the labels of $tag"

if [ "$archive" = yes ]; then
  mkdir -p "$(dirname "$output")"
  rm -f "$output.new"
  case "$tool" in
    buildah) buildah push --quiet "$tag" "docker-archive:$output.new:$tag" ;;
    podman) podman save --quiet --format docker-archive -o "$output.new" "$tag" ;;
    docker) docker save -o "$output.new" "$tag" ;;
  esac || die "$tool could not write the docker-archive $output"
  mv "$output.new" "$output"
  say "Wrote $output ($(du -h "$output" | cut -f1), $tag)"
fi
say "Built $tag"
