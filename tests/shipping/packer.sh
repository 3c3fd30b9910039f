#!/usr/bin/env bash
# The Packer templates' own checks: the layout `packer fmt` gives, Packer's syntax check, and the
# shell scripts the templates run on the build instance. What the templates say (IMDSv2, the
# encryption, tags, uploads, validations) is checked by tests/tests/packer_templates.rs.
#
# Debian's packer is 1.6.6, older than the templates' `required_plugins` (1.7) and fmt's
# -recursive: with it the syntax check leaves plugins.pkr.hcl out, and fmt reads packer/ alone
# (the templates have no subdirectory of HCL).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/shipping/lib.sh
. "$here/lib.sh"

templates="$repo/packer"
[ -d "$templates" ] || fail "no packer/ directory in $repo"

need_command packer packer
need_command shellcheck shellcheck

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

packer_version=$(packer version | sed -n 's/^Packer v\([0-9][0-9.]*\).*/\1/p' | head -1)
[ -n "$packer_version" ] || fail "could not read the version of $(command -v packer)"
# version_at_least A B: whether version A is B or later.
version_at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

step "packer fmt -check -diff on packer/ (Packer $packer_version)"
fmt_args=(-check -diff)
if packer fmt -h 2>&1 | grep -q -- '-recursive'; then
  fmt_args+=(-recursive)
fi
packer fmt "${fmt_args[@]}" "$templates" || fail "packer/ is not in packer fmt's layout (diff above); run: packer fmt packer/"
for template in "$templates"/*.pkr.hcl; do
  printf '    %s\n' "${template#"$repo"/}"
done

if version_at_least "$packer_version" 1.7.0; then
  step "packer validate -syntax-only packer/"
  packer validate -syntax-only "$templates" || fail "packer validate -syntax-only found errors in packer/ (above)"
else
  step "packer validate -syntax-only on packer/ less plugins.pkr.hcl (Packer $packer_version predates required_plugins)"
  mkdir -p "$work/packer"
  for template in "$templates"/*.pkr.hcl; do
    [ "$(basename "$template")" = plugins.pkr.hcl ] || cp "$template" "$work/packer/"
  done
  packer validate -syntax-only "$work/packer" || fail "packer validate -syntax-only found errors in packer/ (above)"
fi

step "bash -n and shellcheck on packer/scripts/"
for script in "$templates"/scripts/*.sh; do
  bash -n "$script" || fail "$script is not valid bash"
  shellcheck "$script" || fail "shellcheck found problems in $script (above)"
  printf '    %s\n' "${script#"$repo"/}"
done

step "packer: all checks passed"
