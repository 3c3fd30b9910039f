# shellcheck shell=bash
# Shared by the AMI install scripts (sourced): step logging, loud failure naming the step, and
# the pieces both tiers install. Every function runs as root on the build instance (or in CI's
# Debian root) with the bake directory in $BAKE.

set -Eeuo pipefail
shopt -s inherit_errexit

CURRENT_STEP="starting"
# step DESCRIPTION: names what runs next, so that a failure says where it happened.
step() {
  CURRENT_STEP="$*"
  printf '==> [%s] %s\n' "${TIER:-ami}" "$CURRENT_STEP"
}
on_error() {
  local status=$?
  printf 'FAILED [%s] during: %s (exit status %s, line %s of %s)\n' \
    "${TIER:-ami}" "$CURRENT_STEP" "$status" "${BASH_LINENO[0]}" "${BASH_SOURCE[1]:-?}" >&2
  exit "$status"
}
trap on_error ERR
die() {
  printf 'FAILED [%s] during: %s: %s\n' "${TIER:-ami}" "$CURRENT_STEP" "$*" >&2
  exit 1
}

# start_install TIER BAKE_DIR: checks the environment every install script relies on.
start_install() {
  TIER=$1
  BAKE=${2:-}
  [ -n "$BAKE" ] || die "usage: install.sh BAKE_DIR (the directory Packer uploaded: ami/, systemd/, artifacts/)"
  [ "$(id -u)" -eq 0 ] || die "must run as root (Packer runs it with sudo)"
  for part in ami systemd artifacts; do
    [ -d "$BAKE/$part" ] || die "the bake directory $BAKE has no $part/ (see docs/amis.md for its layout)"
  done
  VERSION=${VOLTFLEET_VERSION:-}
  [[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] \
    || die "VOLTFLEET_VERSION must be the release being baked, like 1.4.2 (got '${VERSION}')"
  export DEBIAN_FRONTEND=noninteractive
  step "installing voltfleet $VERSION ($TIER tier) from $BAKE"
}

# apt_install PACKAGE...: Debian packages, without the recommended extras.
apt_install() {
  step "installing Debian packages: $*"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# system_user NAME: a system user and group of that name, no login, no home directory.
system_user() {
  step "creating the system user $1"
  if ! getent group "$1" >/dev/null; then groupadd --system "$1"; fi
  if ! getent passwd "$1" >/dev/null; then
    useradd --system --gid "$1" --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin --comment "voltfleet $1" "$1"
  fi
}

# install_tuning: kernel, limits and journal settings both tiers share.
install_tuning() {
  step "installing kernel and limits tuning for many long-lived connections"
  install -D -m 0644 "$BAKE/ami/common/sysctl.d/60-voltfleet.conf" /etc/sysctl.d/60-voltfleet.conf
  install -D -m 0644 "$BAKE/ami/common/limits.d/60-voltfleet.conf" /etc/security/limits.d/60-voltfleet.conf
  install -D -m 0644 "$BAKE/ami/common/modules-load.d/voltfleet.conf" /etc/modules-load.d/voltfleet.conf
  install -D -m 0644 "$BAKE/ami/common/journald.conf.d/60-voltfleet.conf" \
    /etc/systemd/journald.conf.d/60-voltfleet.conf
  # The parameters are applied at every boot by systemd-sysctl; a value this kernel does not know
  # is reported here rather than discovered on the fleet. CI's chroot shares the host's kernel, so
  # there only the file's syntax is read.
  if [ -z "${VOLTFLEET_BAKE_IN_CHROOT:-}" ]; then
    sysctl --load=/etc/sysctl.d/60-voltfleet.conf >/dev/null
  fi
}

# install_cloudwatch_agent: Amazon's CloudWatch agent, its signature checked, with the tier's
# configuration (ami/TIER/cloudwatch-agent.json, and prometheus.yaml for the services' metrics).
# VOLTFLEET_CLOUDWATCH_AGENT_DEB may name a local .deb instead, or `skip` where Amazon's S3
# cannot be reached (CI); the configuration is installed either way.
install_cloudwatch_agent() {
  local arch deb
  local agent_dir=/opt/aws/amazon-cloudwatch-agent
  step "installing the CloudWatch agent configuration"
  install -D -m 0644 "$BAKE/ami/$TIER/cloudwatch-agent.json" "$agent_dir/etc/amazon-cloudwatch-agent.json"
  install -D -m 0644 "$BAKE/ami/$TIER/prometheus.yaml" "$agent_dir/etc/voltfleet-prometheus.yaml"
  case "${VOLTFLEET_CLOUDWATCH_AGENT_DEB:-download}" in
    skip)
      step "skipping the CloudWatch agent package (VOLTFLEET_CLOUDWATCH_AGENT_DEB=skip)"
      return 0
      ;;
    download)
      arch=$(dpkg --print-architecture)
      local base="${VOLTFLEET_CLOUDWATCH_AGENT_URL:-https://amazoncloudwatch-agent.s3.amazonaws.com}"
      deb=$(mktemp -d)/amazon-cloudwatch-agent.deb
      step "downloading the CloudWatch agent for $arch from $base"
      curl -fsSL --retry 3 -o "$deb" "$base/debian/$arch/latest/amazon-cloudwatch-agent.deb"
      curl -fsSL --retry 3 -o "$deb.sig" "$base/debian/$arch/latest/amazon-cloudwatch-agent.deb.sig"
      curl -fsSL --retry 3 -o "$deb.key" "$base/assets/amazon-cloudwatch-agent.gpg"
      command -v gpg >/dev/null || apt_install gnupg
      step "checking the CloudWatch agent's signature"
      local gnupg fingerprint
      gnupg=$(mktemp -d)
      gpg --homedir "$gnupg" --quiet --import "$deb.key" 2>/dev/null
      fingerprint=$(gpg --homedir "$gnupg" --with-colons --fingerprint | awk -F: '/^fpr/ {print $10; exit}')
      [ "$fingerprint" = "${VOLTFLEET_CLOUDWATCH_AGENT_KEY:-937616F3450B7D806CBD9725D58167303B789C72}" ] \
        || die "the CloudWatch agent's signing key has fingerprint $fingerprint, not the one AWS documents"
      gpg --homedir "$gnupg" --quiet --verify "$deb.sig" "$deb" 2>/dev/null \
        || die "the CloudWatch agent package's signature does not verify"
      rm -rf "$gnupg"
      ;;
    *)
      deb=$VOLTFLEET_CLOUDWATCH_AGENT_DEB
      [ -f "$deb" ] || die "VOLTFLEET_CLOUDWATCH_AGENT_DEB=$deb is not a file"
      ;;
  esac
  step "installing the CloudWatch agent package"
  dpkg -i "$deb" >/dev/null
  # Translates the JSON into the agent's own files now, so that a mistake fails the bake.
  "$agent_dir/bin/amazon-cloudwatch-agent-ctl" -a fetch-config -m ec2 \
    -c "file:$agent_dir/etc/amazon-cloudwatch-agent.json" >/dev/null
  systemctl enable amazon-cloudwatch-agent.service
}

# install_unit FILE: a unit file from the repository's systemd/ directory.
install_unit() {
  install -D -m 0644 "$BAKE/systemd/$1" "/etc/systemd/system/$1"
}

# finish_install: what every AMI leaves behind cleaned so that each instance starts fresh.
finish_install() {
  step "cleaning the package cache"
  apt-get clean
  rm -rf /var/lib/apt/lists/*
  step "recording the release in /etc/voltfleet/release"
  install -d -m 0755 /etc/voltfleet
  printf 'VOLTFLEET_TIER=%s\nVOLTFLEET_VERSION=%s\n' "$TIER" "$VERSION" >/etc/voltfleet/release
  step "done: voltfleet $VERSION ($TIER tier) is installed"
}
