#!/usr/bin/env bash
# Installs the web tier on a Debian 12 host: voltfleet-proxy under systemd, its configuration
# fetched from SSM Parameter Store at every boot, the static website, kernel and limits tuning,
# and the CloudWatch agent. Run as root with the bake directory Packer uploaded:
#   VOLTFLEET_VERSION=1.4.2 bash ami/web/install.sh /tmp/voltfleet-bake
source "$(dirname "${BASH_SOURCE[0]}")/../common/lib.sh"
start_install web "${1:-}"

proxy_binary="$BAKE/artifacts/voltfleet-proxy"
site="$BAKE/artifacts/site"
[ -x "$proxy_binary" ] || die "no executable $proxy_binary (build it with cargo build --release -p voltfleet-proxy)"
[ -f "$site/index.html" ] || die "no website in $site (the repository's site/ directory)"

# awscli fetches the configuration from SSM (fetch-proxy-config).
apt_install ca-certificates curl awscli

system_user voltfleet-proxy

step "installing /usr/bin/voltfleet-proxy"
install -m 0755 "$proxy_binary" /usr/bin/voltfleet-proxy
reported=$(/usr/bin/voltfleet-proxy --version)
[ "$reported" = "voltfleet-proxy $VERSION" ] \
  || die "the proxy binary reports '$reported', but this bake is for version $VERSION"

step "installing the website in /usr/share/voltfleet/site"
rm -rf /usr/share/voltfleet/site
install -d -m 0755 /usr/share/voltfleet/site
cp -R "$site/." /usr/share/voltfleet/site/
chown -R root:root /usr/share/voltfleet/site
find /usr/share/voltfleet/site -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +

step "preparing /etc/voltfleet for the configuration fetched at boot"
install -d -m 0755 /etc/voltfleet
install -d -m 0750 -g voltfleet-proxy /etc/voltfleet/proxy
install -m 0644 "$BAKE/ami/web/proxy.env.example" /etc/voltfleet/proxy.env.example
install -D -m 0755 "$BAKE/ami/web/fetch-proxy-config" /usr/libexec/voltfleet/fetch-proxy-config

step "installing and enabling the systemd units"
install_unit voltfleet-proxy.service
install_unit voltfleet-proxy-config.service
systemctl enable voltfleet-proxy-config.service voltfleet-proxy.service

install_tuning
install_cloudwatch_agent
finish_install
