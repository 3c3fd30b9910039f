# The web tier's AMI: voltfleet-proxy, its units and its configuration fetched from SSM at boot,
# the website, the CloudWatch agent and the kernel and limits tuning, all installed by
# ami/web/install.sh from the bake directory. Alone: packer build -only='web.*' packer/

source "amazon-ebs" "web" {
  region        = var.region
  instance_type = local.instance_type
  subnet_id     = var.subnet_id
  vpc_id        = var.vpc_id

  source_ami_filter {
    filters = {
      name                = local.source_ami_name
      architecture        = local.ami_architecture
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = [var.source_ami_owner]
    most_recent = true
  }

  communicator                              = "ssh"
  ssh_username                              = "admin"
  ssh_interface                             = local.ssh_interface
  ssh_timeout                               = "10m"
  temporary_security_group_source_cidrs     = var.ssh_source_cidrs
  temporary_security_group_source_public_ip = length(var.ssh_source_cidrs) == 0
  iam_instance_profile                      = var.iam_instance_profile
  user_data_file                            = local.build_user_data_file

  dynamic "temporary_iam_instance_profile_policy_document" {
    for_each = local.temporary_ssm_profiles
    content {
      Version = "2012-10-17"
      Statement {
        Effect   = "Allow"
        Action   = local.ssm_session_actions
        Resource = ["*"]
      }
    }
  }

  # IMDSv2 only: the build instance now, and every instance launched from the AMI later.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  imds_support = "v2.0"

  # The build volume is encrypted with the AMI's key from the start, so nothing of the bake is
  # ever written in the clear; encrypt_boot keeps the AMI and its copies encrypted whatever the
  # source AMI was.
  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.web_volume_size
    volume_type           = "gp3"
    encrypted             = true
    kms_key_id            = var.kms_key_id
    delete_on_termination = true
  }
  encrypt_boot       = true
  kms_key_id         = var.kms_key_id
  ami_regions        = keys(var.copy_regions)
  region_kms_key_ids = var.copy_regions

  ami_name              = local.web.name
  ami_description       = "voltfleet web tier ${var.version} (${var.revision}): voltfleet-proxy on Debian 12 ${var.architecture}"
  force_deregister      = false
  force_delete_snapshot = false

  tags              = local.web.tags
  snapshot_tags     = local.web.tags
  run_tags          = local.web.build_tags
  run_volume_tags   = local.web.build_tags
  skip_ami_run_tags = true

  # Copies to other regions and encrypted snapshots take longer than the plugin's default wait.
  aws_polling {
    delay_seconds = 30
    max_attempts  = 120
  }
}

build {
  name    = "web"
  sources = ["source.amazon-ebs.web"]

  # cloud-init (and, with Session Manager, the agent's install) is done before anything runs apt.
  provisioner "shell" {
    inline = [
      "cloud-init status --wait >/dev/null || { cloud-init status --long; exit 1; }",
      "mkdir -p ${local.bake_dir}/artifacts",
    ]
  }

  provisioner "file" {
    source      = "${path.root}/../ami"
    destination = "${local.bake_dir}/"
  }

  provisioner "file" {
    source      = "${path.root}/../systemd"
    destination = "${local.bake_dir}/"
  }

  provisioner "file" {
    source      = local.proxy_binary
    destination = "${local.bake_dir}/artifacts/voltfleet-proxy"
  }

  provisioner "file" {
    source      = "${path.root}/../site"
    destination = "${local.bake_dir}/artifacts/"
  }

  provisioner "shell" {
    environment_vars = ["VOLTFLEET_VERSION=${var.version}"]
    execute_command  = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
    inline           = ["bash ${local.bake_dir}/ami/web/install.sh ${local.bake_dir}"]
  }

  provisioner "shell" {
    environment_vars = [
      "VOLTFLEET_BAKE_DIR=${local.bake_dir}",
      "VOLTFLEET_SSM_AGENT_FROM_BAKE=${var.ssh_via_session_manager}",
    ]
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
    script          = "${path.root}/scripts/cleanup.sh"
  }

  post-processor "manifest" {
    output = "${path.root}/manifest.json"
    custom_data = {
      tier            = "web"
      version         = var.version
      revision        = var.revision
      architecture    = var.architecture
      source_ami      = build.SourceAMI
      source_ami_name = build.SourceAMIName
    }
  }
}
