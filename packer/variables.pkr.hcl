# What a bake of either tier takes. Pass them with -var NAME=VALUE or a -var-file; docs/amis.md
# has the table with examples. A validation accepts a value only in the shape AWS and the install
# scripts take, so that a typo stops `packer build` before any instance is launched.

variable "region" {
  type        = string
  description = "The AWS region the build instance runs in and the AMI is registered in, such as eu-west-1."

  validation {
    condition     = length(regexall("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+$", var.region)) > 0
    error_message = "The region must be an AWS region name such as eu-west-1 or us-gov-west-1."
  }
}

variable "copy_regions" {
  type        = map(string)
  default     = {}
  description = "Regions to copy the finished AMI to, each with the KMS key (id, alias/NAME or ARN in that region) that encrypts its copy; an empty key means that region's default EBS key."

  validation {
    condition     = length([for region in keys(var.copy_regions) : region if length(regexall("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+$", region)) == 0]) == 0
    error_message = "Every key of copy_regions must be an AWS region name such as eu-central-1."
  }

  validation {
    condition     = length([for key in values(var.copy_regions) : key if length(regexall("^(|alias/[A-Za-z0-9/_-]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+)$", key)) == 0]) == 0
    error_message = "Every value of copy_regions must be empty or a KMS key id, alias/NAME or key ARN."
  }
}

variable "version" {
  type        = string
  description = "The voltfleet release baked, as in Cargo.toml (1.2.3 or 1.2.3-rc.1): it names the AMI and tags the app tier's image localhost/voltfleet:VERSION."

  # No build metadata (+...): neither AMI names nor image tags may carry a plus sign.
  validation {
    condition     = length(regexall("^[0-9]+\\.[0-9]+\\.[0-9]+(-[0-9A-Za-z]+(\\.[0-9A-Za-z]+)*)?$", var.version)) > 0
    error_message = "The version must look like 1.2.3 or 1.2.3-rc.1, without a leading v."
  }
}

variable "revision" {
  type        = string
  description = "The git commit the artifacts were built from (git rev-parse HEAD), recorded in the AMI's tags and the manifest."

  validation {
    condition     = length(regexall("^[0-9a-f]{7,40}$", var.revision)) > 0
    error_message = "The revision must be a git commit id: 7 to 40 lowercase hexadecimal digits."
  }
}

variable "architecture" {
  type        = string
  default     = "amd64"
  description = "The CPU architecture of the AMI, amd64 or arm64 (Graviton); the proxy binary and the image archive must be built for it."

  validation {
    condition     = contains(["amd64", "arm64"], var.architecture)
    error_message = "The architecture must be amd64 or arm64."
  }
}

variable "instance_type" {
  type        = string
  default     = ""
  description = "The instance type of the build instance only (the fleet's comes from its launch template); empty means t3.medium for amd64 and t4g.medium for arm64."

  validation {
    condition     = length(regexall("^([a-z][a-z0-9-]*\\.[a-z0-9]+)?$", var.instance_type)) > 0
    error_message = "The instance_type must be an EC2 instance type such as t3.medium, or empty for the default."
  }
}

variable "source_ami_name" {
  type        = string
  default     = ""
  description = "The name filter of the base AMI; the newest match wins. Empty means Debian 12 for the architecture, debian-12-amd64-* or debian-12-arm64-*."
}

variable "source_ami_owner" {
  type        = string
  default     = "136693071363"
  description = "The AWS account that publishes the base AMI: 136693071363 is Debian's own."

  validation {
    condition     = length(regexall("^[0-9]{12}$", var.source_ami_owner)) > 0
    error_message = "The source_ami_owner must be a 12-digit AWS account id."
  }
}

variable "kms_key_id" {
  type        = string
  default     = ""
  description = "The KMS key (id, alias/NAME or ARN) that encrypts the build volume and the AMI's snapshots in the build region; empty means the region's default EBS key, which cannot be shared with other accounts."

  validation {
    condition     = length(regexall("^(|alias/[A-Za-z0-9/_-]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+)$", var.kms_key_id)) > 0
    error_message = "The kms_key_id must be empty or a KMS key id, alias/NAME or key ARN."
  }
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "The subnet of the build instance; empty uses the region's default VPC. Accounts without a default VPC must name one, with a route to the internet (public IP or NAT) for apt and Amazon's downloads."

  validation {
    condition     = length(regexall("^(subnet-[0-9a-f]{8,17})?$", var.subnet_id)) > 0
    error_message = "The subnet_id must be a subnet id such as subnet-0123456789abcdef0, or empty."
  }
}

variable "vpc_id" {
  type        = string
  default     = ""
  description = "The VPC of subnet_id, for the temporary security group; empty means the subnet's own VPC. Only with subnet_id."

  validation {
    condition     = length(regexall("^(vpc-[0-9a-f]{8,17})?$", var.vpc_id)) > 0
    error_message = "The vpc_id must be a VPC id such as vpc-0123456789abcdef0, or empty."
  }
}

variable "ssh_source_cidrs" {
  type        = list(string)
  default     = []
  description = "Who may reach the build instance's SSH port through its temporary security group; empty means only the public address of the machine running Packer."
}

variable "ssh_via_session_manager" {
  type        = bool
  default     = false
  description = "Reach the build instance over SSH through AWS Systems Manager Session Manager instead of its IP address, for subnets without inbound access. The build instance installs the SSM agent at boot; the AMI keeps it installed but disabled."
}

variable "iam_instance_profile" {
  type        = string
  default     = ""
  description = "An instance profile for the build instance. With Session Manager and no profile, Packer makes a temporary one that allows the agent's session calls only."
}

variable "web_volume_size" {
  type        = number
  default     = 8
  description = "The root volume of the web AMI, in GiB: the smallest a launch template can ask for."

  validation {
    condition     = var.web_volume_size >= 8
    error_message = "The web_volume_size must be at least 8 GiB, the size of Debian's own AMI."
  }
}

variable "app_volume_size" {
  type        = number
  default     = 16
  description = "The root volume of the app AMI, in GiB (the image and the containers' storage live on it): the smallest a launch template can ask for."

  validation {
    condition     = var.app_volume_size >= 8
    error_message = "The app_volume_size must be at least 8 GiB, the size of Debian's own AMI."
  }
}

variable "proxy_binary" {
  type        = string
  default     = ""
  description = "The release voltfleet-proxy binary the web AMI carries; empty means target/release/voltfleet-proxy in this repository."
}

variable "image_archive" {
  type        = string
  default     = ""
  description = "The voltfleet image archive (docker-archive) the app AMI loads; empty means dist/voltfleet-image.tar in this repository."
}

variable "extra_tags" {
  type        = map(string)
  default     = {}
  description = "More tags for the AMIs, their snapshots and the build instance, such as a cost centre; the tags the templates set themselves win over these."

  validation {
    condition     = length([for key in keys(var.extra_tags) : key if length(regexall("^aws:", key)) > 0]) == 0
    error_message = "The extra_tags must not use the aws: prefix, which AWS keeps for itself."
  }
}
