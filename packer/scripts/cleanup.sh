#!/bin/bash
# The last step of every bake, as root on the build instance: takes away what belongs to this
# instance rather than to the AMI, so that every instance launched from it boots like the first
# boot of Debian's own AMI — cloud-init runs its user data, makes new SSH host keys and installs
# its launch key, and systemd gives it a machine id of its own.
set -euo pipefail

bake_dir=${VOLTFLEET_BAKE_DIR:?VOLTFLEET_BAKE_DIR must name the bake directory, e.g. /tmp/voltfleet-bake}
ssm_agent_from_bake=${VOLTFLEET_SSM_AGENT_FROM_BAKE:-false}

step() { printf '==> cleanup: %s\n' "$*"; }
trap 'printf "FAIL: cleanup stopped at line %s\n" "$LINENO" >&2' ERR

step "removing the bake directory $bake_dir"
rm -rf -- "$bake_dir"

if [ "$ssm_agent_from_bake" = true ]; then
  # The agent came with the build instance's user data, only to let Packer in. It stays
  # installed for whoever wants it (enable it in the launch template's user data) but does not
  # start by itself. Disabling does not stop it, so this session carries on.
  step "disabling the SSM agent the bake installed"
  systemctl disable amazon-ssm-agent.service
  rm -rf /var/log/amazon/ssm
fi

step "cleaning apt's caches and lists"
apt-get clean
rm -rf /var/lib/apt/lists/*

step "resetting cloud-init, so that the next boot is a first boot"
cloud-init clean --logs

step "removing the SSH host keys and the build instance's login key"
rm -f /etc/ssh/ssh_host_*
rm -f /root/.ssh/authorized_keys /home/*/.ssh/authorized_keys

# Empty rather than absent, as in Debian's AMI: systemd writes a new id at the next boot.
step "emptying the machine id, the hostname and the random seed"
: >/etc/machine-id
if [ -f /var/lib/dbus/machine-id ] && [ ! -L /var/lib/dbus/machine-id ]; then
  rm -f /var/lib/dbus/machine-id
fi
: >/etc/hostname
rm -f /var/lib/systemd/random-seed

# journald goes on writing to the removed files until the instance stops; the next boot, with
# its new machine id, starts a directory of its own.
step "removing the bake's journal"
rm -rf /var/log/journal/*

sync
step "done"
