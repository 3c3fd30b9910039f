# What both tiers derive from the variables the same way.

locals {
  # Where the file provisioners put the repository's ami/ and systemd/ and the build artifacts,
  # and what the install scripts take as their only argument.
  bake_dir = "/tmp/voltfleet-bake"

  # One timestamp per run, so that both AMIs of a run carry the same one in their names.
  timestamp = formatdate("YYYYMMDDhhmmss", timestamp())

  ami_architecture = { amd64 = "x86_64", arm64 = "arm64" }[var.architecture]
  instance_type    = var.instance_type != "" ? var.instance_type : { amd64 = "t3.medium", arm64 = "t4g.medium" }[var.architecture]
  source_ami_name  = var.source_ami_name != "" ? var.source_ami_name : "debian-12-${var.architecture}-*"

  proxy_binary  = var.proxy_binary != "" ? var.proxy_binary : "${path.root}/../target/release/voltfleet-proxy"
  image_archive = var.image_archive != "" ? var.image_archive : "${path.root}/../dist/voltfleet-image.tar"

  # Session Manager needs the agent, which Debian's AMIs do not carry, and an instance profile
  # that lets it open sessions: the one given, or a temporary one allowing exactly that.
  build_user_data_file   = var.ssh_via_session_manager ? "${path.root}/scripts/ssm-agent-user-data.sh" : ""
  ssh_interface          = var.ssh_via_session_manager ? "session_manager" : ""
  temporary_ssm_profiles = var.ssh_via_session_manager && var.iam_instance_profile == "" ? ["session-manager"] : []
  ssm_session_actions = [
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
  ]

  # Applied to the AMIs, their snapshots and everything the build launches. Ours come last so
  # that extra_tags cannot overwrite them. SourceAMI* are filled in by the Amazon plugin.
  common_tags = merge(var.extra_tags, {
    Project       = "voltfleet"
    Version       = var.version
    Revision      = var.revision
    Architecture  = var.architecture
    SourceAMI     = "{{ .SourceAMI }}"
    SourceAMIName = "{{ .SourceAMIName }}"
    BuiltBy       = "packer"
  })

  web = {
    name = "voltfleet-web-${var.version}-${var.architecture}-${local.timestamp}"
    tags = merge(local.common_tags, {
      Name = "voltfleet-web-${var.version}"
      Tier = "web"
    })
    build_tags = merge(local.common_tags, {
      Name = "voltfleet-web-${var.version}-bake"
      Tier = "web"
    })
  }

  app = {
    name = "voltfleet-app-${var.version}-${var.architecture}-${local.timestamp}"
    tags = merge(local.common_tags, {
      Name = "voltfleet-app-${var.version}"
      Tier = "app"
    })
    build_tags = merge(local.common_tags, {
      Name = "voltfleet-app-${var.version}-bake"
      Tier = "app"
    })
  }
}
