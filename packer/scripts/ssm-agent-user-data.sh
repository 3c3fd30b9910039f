#!/bin/bash
# User data of the build instance when Packer reaches it through Session Manager
# (ssh_via_session_manager): Debian's AMIs carry no SSM agent, so cloud-init installs Amazon's
# package for this region and architecture before Packer's first connection attempt.
set -euo pipefail

imds=http://169.254.169.254/latest
token=$(curl -fsS --retry 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$imds/api/token")
region=$(curl -fsS --retry 5 -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/placement/region")
arch=$(dpkg --print-architecture)

deb=$(mktemp --suffix=.deb)
trap 'rm -f "$deb"' EXIT
curl -fsS --retry 5 -o "$deb" \
  "https://s3.$region.amazonaws.com/amazon-ssm-$region/latest/debian_$arch/amazon-ssm-agent.deb"
dpkg -i "$deb"
systemctl enable --now amazon-ssm-agent.service
