#!/usr/bin/env bash
# Installs the app tier on a Debian 12 host: podman, the voltfleet image loaded into its store,
# one systemd unit per service (api, backoffice, ocpp, ocpi, jobs) running that service's
# container, the migration unit they start after, kernel and limits tuning, and the CloudWatch
# agent. Run as root with the bake directory Packer uploaded:
#   VOLTFLEET_VERSION=1.4.2 bash ami/app/install.sh /tmp/voltfleet-bake
source "$(dirname "${BASH_SOURCE[0]}")/../common/lib.sh"
start_install app "${1:-}"

services=(api backoffice ocpp ocpi jobs)
archive="$BAKE/artifacts/voltfleet-image.tar"
image="localhost/voltfleet:$VERSION"
[ -f "$archive" ] || die "no image archive $archive (make it with scripts/build-image.sh)"

apt_install ca-certificates curl podman

step "configuring podman: container logs and events to the journal, open-file limits"
install -D -m 0644 "$BAKE/ami/app/containers.conf" /etc/containers/containers.conf.d/60-voltfleet.conf

step "loading the image from $archive"
podman load --quiet --input "$archive" >/dev/null
podman image exists "$image" || die "the archive does not hold $image (was it built for version $VERSION?)"
labelled=$(podman image inspect --format '{{ index .Labels "org.opencontainers.image.version" }}' "$image")
[ "$labelled" = "$VERSION" ] || die "$image is labelled version '$labelled', not $VERSION"
podman tag "$image" localhost/voltfleet:current

# The image's user, here too, so that a host directory mounted into a container (a volume for
# data_dir) can be given to it by name.
step "creating the system user voltfleet with the image's uid and gid"
image_user=$(podman image inspect --format '{{ .User }}' "$image")
[[ "$image_user" =~ ^([0-9]+):([0-9]+)$ ]] \
  || die "the image runs as '$image_user'; it must name a numeric uid:gid"
uid=${BASH_REMATCH[1]} gid=${BASH_REMATCH[2]}
getent group voltfleet >/dev/null || groupadd --system --gid "$gid" voltfleet
getent passwd voltfleet >/dev/null \
  || useradd --system --uid "$uid" --gid "$gid" --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin --comment "voltfleet services (the image's user)" voltfleet

step "writing the environment files under /etc/voltfleet"
install -d -m 0755 /etc/voltfleet
printf '# The image the voltfleet@ units run; written when the AMI was baked.\nVOLTFLEET_IMAGE=%s\n' \
  "$image" >/etc/voltfleet/image.env
install -m 0644 "$BAKE/ami/app/app.env.example" /etc/voltfleet/app.env.example
for service in "${services[@]}"; do
  env_file=/etc/voltfleet/$service.env
  [ -e "$env_file" ] && continue
  printf '# Settings for the %s service only (VOLTFLEET__SECTION__KEY=value), after app.env.\n' \
    "$service" >"$env_file"
  chmod 0600 "$env_file"
done

step "installing and enabling the systemd units"
install_unit voltfleet@.service
install_unit voltfleet-migrate.service
units=(voltfleet-migrate.service)
for service in "${services[@]}"; do units+=("voltfleet@$service.service"); done
systemctl enable "${units[@]}"

install_tuning
install_cloudwatch_agent
finish_install
