#!/usr/bin/env bash
# Every shell script that ships or checks what ships, through shellcheck (warnings and errors)
# and bash -n: the AMI install scripts run once per bake, where a mistake costs a whole bake.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/shipping/lib.sh
need_command shellcheck shellcheck

mapfile -t scripts < <(
  { find ami tests/shipping packer/scripts scripts -type f \( -name '*.sh' -o -name run \)
    printf '%s\n' ami/web/fetch-proxy-config
  } | sort -u
)
step "shellcheck and bash -n on ${#scripts[@]} scripts"
for script in "${scripts[@]}"; do
  bash -n "$script" || fail "$script does not parse"
done
shellcheck --severity=warning --external-sources --source-path=SCRIPTDIR "${scripts[@]}" \
  || fail "shellcheck found problems (above)"
printf '  ok  %s\n' "${scripts[@]}"
