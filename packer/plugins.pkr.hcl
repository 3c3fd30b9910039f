# Packer 1.10 or later with the Amazon plugin: `packer init packer/` installs it. The minor
# version is pinned so that a bake next month runs the builder that baked this month's AMIs;
# raise it here, in one change, after reading the plugin's changelog.
packer {
  required_version = ">= 1.10.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = "~> 1.8.2"
    }
  }
}
