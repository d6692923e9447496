# Bake a direct-lvm machine image: a base disk image with cloud-init, plus lvm2,
# thin-provisioning-tools, the container runtime and direct-lvm, registered with
# cloud-init by `direct-lvm image-setup`. The bake makes no pool and never starts the
# runtime: each instance gets its pool on first boot from its user-data (see README.md).
#
# scripts/bake fills every variable; by hand:
#   packer build -var environment=dev -var base_image=... -var deb=... \
#     -var seed_dir=... -var ssh_private_key_file=... -var ssh_key_marker=... packer/
#
# Written for Packer >= 1.6.6 (Debian's, which has the qemu builder built in). With
# Packer >= 1.7, copy plugins.pkr.hcl.example to plugins.pkr.hcl and run `packer init
# packer/` once (see README.md): 1.6.6 rejects the required_plugins block it holds.
#
# Every path variable is checked to exist, and every number and size to be sane, by a
# validation block: `packer validate` names the variable and the fix.

packer {
  required_version = ">= 1.6.6"
}

# --- base image --------------------------------------------------------------------

variable "base_image" {
  type        = string
  description = "Path or URL of the base disk image (raw or qcow2) with cloud-init and sshd."
  validation {
    condition     = regex_replace(var.base_image, "^(https?|file)://.+$", "") == "" ? true : fileexists(var.base_image)
    error_message = "The base_image variable must be an existing image file or an http(s):// or file:// URL."
  }
}

variable "base_image_checksum" {
  type        = string
  default     = "none"
  description = "Checksum of base_image, e.g. \"sha256:...\"; \"none\" skips the check."
  validation {
    condition     = regex_replace(var.base_image_checksum, "^(none|(md5|sha1|sha256|sha512):[0-9a-fA-F]+|file:.+)$", "") == ""
    error_message = "The base_image_checksum variable must be none, TYPE:HEX (md5, sha1, sha256, sha512) or file:URL."
  }
}

variable "kernel" {
  type        = string
  default     = ""
  description = "Kernel to boot directly, for a base image without a bootloader; \"\" boots the disk."
  validation {
    condition     = var.kernel == "" ? true : fileexists(var.kernel)
    error_message = "The kernel variable must be \"\" or an existing kernel file."
  }
}

variable "initrd" {
  type        = string
  default     = ""
  description = "Initrd for kernel; only used with kernel."
  validation {
    condition     = var.initrd == "" ? true : fileexists(var.initrd)
    error_message = "The initrd variable must be \"\" or an existing initrd file."
  }
}

variable "kernel_append" {
  type        = string
  default     = ""
  description = "Kernel command line for kernel, e.g. \"root=LABEL=root rw console=ttyS0,115200\"."
}

variable "disk_size" {
  type        = string
  default     = ""
  description = "Grow the disk to this size (e.g. \"8G\"); \"\" keeps the base image's size."
  validation {
    condition     = regex_replace(var.disk_size, "^([1-9][0-9]*[KMGT]?)?$", "") == ""
    error_message = "The disk_size variable must be \"\" or a size such as 8G, 20480M or 1T."
  }
}

# --- environment -------------------------------------------------------------------

variable "environment" {
  type        = string
  description = "The direct-lvm environment (environments/NAME.yaml) the image is baked for."
  validation {
    condition     = regex_replace(var.environment, "^[A-Za-z0-9][A-Za-z0-9._-]*$", "") == ""
    error_message = "The environment variable must be an environment name: letters, digits, dot, dash, underscore."
  }
}

variable "deb" {
  type        = string
  description = "direct-lvm's Debian package (scripts/build-deb: dist/direct-lvm_VERSION_all.deb), installed with apt-get."
  validation {
    condition     = regex_replace(var.deb, "^.+\\.deb$", "") == "" ? fileexists(var.deb) : false
    error_message = "The deb variable must be an existing .deb file (scripts/build-deb prints its path)."
  }
}

variable "packages" {
  type        = list(string)
  default     = ["lvm2", "dmeventd", "thin-provisioning-tools", "docker.io", "python3-jinja2", "python3-yaml", "python3-jsonschema", "python3-tomlkit"]
  description = "Debian packages the image needs (the runtime and the .deb's Depends); installed with apt only when missing."
}

variable "enable_units" {
  type        = list(string)
  default     = ["docker.service", "docker.socket", "containerd.service"]
  description = "Units enabled (not started) in the image: the runtime starts on first boot."
}

# --- how Packer reaches the guest --------------------------------------------------

variable "seed_dir" {
  type        = string
  description = "Directory with the NoCloud user-data and meta-data that let Packer log in (its key)."
  validation {
    condition     = fileexists("${var.seed_dir}/user-data") && fileexists("${var.seed_dir}/meta-data")
    error_message = "The seed_dir variable must be a directory holding the files user-data and meta-data."
  }
}

variable "ssh_username" {
  type        = string
  default     = "root"
  description = "User the seed authorizes Packer's key for; another user needs passwordless sudo."
  validation {
    condition     = regex_replace(var.ssh_username, "^[a-z_][a-z0-9_-]*$", "") == ""
    error_message = "The ssh_username variable must be a user name (lower case letters, digits, _ and -)."
  }
}

variable "ssh_private_key_file" {
  type        = string
  description = "Private half of the throw-away key in seed_dir's user-data."
  validation {
    condition     = fileexists(var.ssh_private_key_file)
    error_message = "The ssh_private_key_file variable must be an existing private key file."
  }
}

variable "ssh_key_marker" {
  type        = string
  description = "Comment of that key in authorized_keys: its line is removed at the end of the bake."
  validation {
    condition     = regex_replace(var.ssh_key_marker, "^[A-Za-z0-9._@-]+$", "") == ""
    error_message = "The ssh_key_marker variable must be one word (letters, digits, . _ @ -): the key's comment."
  }
}

# --- machine -----------------------------------------------------------------------

variable "accelerator" {
  type        = string
  default     = "kvm"
  description = "qemu accelerator: kvm, or tcg where there is no KVM (slow)."
  validation {
    condition     = regex_replace(var.accelerator, "^(kvm|tcg|hvf|whpx|xen|none)$", "") == ""
    error_message = "The accelerator variable must be one of kvm, tcg, hvf, whpx, xen, none."
  }
}

variable "cpu_model" {
  type        = string
  default     = "max"
  description = "qemu -cpu model: max (everything the accelerator offers), host (KVM only), or a named model."
}

variable "cpus" {
  type        = number
  default     = 2
  description = "Virtual CPUs of the bake's VM."
  validation {
    condition     = var.cpus >= 1 && var.cpus <= 256 && floor(var.cpus) == var.cpus
    error_message = "The cpus variable must be a whole number from 1 to 256."
  }
}

variable "memory" {
  type        = number
  default     = 2048
  description = "Memory of the bake's VM, in MiB (apt and docker.io's postinst need about 1024)."
  validation {
    condition     = var.memory >= 512 && var.memory <= 1048576 && floor(var.memory) == var.memory
    error_message = "The memory variable must be a whole number of MiB from 512 to 1048576."
  }
}

variable "ssh_timeout" {
  type        = string
  default     = "30m"
  description = "How long Packer waits for the guest's sshd (a Go duration: 30m, 1h, 90s); TCG boots are slow."
  validation {
    condition     = regex_replace(var.ssh_timeout, "^([0-9]+(h|m|s|ms))+$", "") == ""
    error_message = "The ssh_timeout variable must be a duration such as 30m, 1h30m or 90s."
  }
}

variable "serial_log" {
  type        = string
  default     = ""
  description = "File to write the guest's serial console to; \"\" discards it."
}

# --- output ------------------------------------------------------------------------

variable "output_dir" {
  type        = string
  default     = ""
  description = "Directory for the artifact (must not exist); \"\" means output-ENVIRONMENT."
}

variable "image_name" {
  type        = string
  default     = ""
  description = "File name of the qcow2 artifact; \"\" means direct-lvm-ENVIRONMENT.qcow2."
  validation {
    condition     = regex_replace(var.image_name, "^([^/]+\\.qcow2)?$", "") == ""
    error_message = "The image_name variable must be \"\" or a file name (no /) ending in .qcow2."
  }
}

locals {
  output_dir  = var.output_dir != "" ? var.output_dir : "output-${var.environment}"
  image_name  = var.image_name != "" ? var.image_name : "direct-lvm-${var.environment}.qcow2"
  remote_deb  = "/tmp/${basename(var.deb)}"
  kernel_args = var.kernel == "" ? [] : [["-kernel", var.kernel]]
  initrd_args = var.kernel == "" || var.initrd == "" ? [] : [["-initrd", var.initrd]]
  append_args = var.kernel == "" || var.kernel_append == "" ? [] : [["-append", var.kernel_append]]
  serial_args = var.serial_log == "" ? [] : [["-serial", "file:${var.serial_log}"]]
  as_root     = var.ssh_username == "root" ? "" : "sudo "
  execute     = "chmod +x {{ .Path }}; ${local.as_root}env {{ .Vars }} {{ .Path }}"
  bake_env = [
    "BAKE_PACKAGES=${join(" ", var.packages)}",
    "BAKE_UNITS=${join(" ", var.enable_units)}",
    "BAKE_DEB=${local.remote_deb}",
    "BAKE_KEY_MARKER=${var.ssh_key_marker}",
  ]
}

source "qemu" "direct-lvm" {
  iso_url          = var.base_image
  iso_checksum     = var.base_image_checksum
  disk_image       = true
  use_backing_file = false
  format           = "qcow2"
  disk_size        = var.disk_size != "" ? var.disk_size : null
  skip_resize_disk = var.disk_size == ""
  disk_interface   = "virtio"
  output_directory = local.output_dir
  vm_name          = local.image_name

  accelerator  = var.accelerator
  machine_type = "q35"
  cpus         = var.cpus
  memory       = var.memory
  headless     = true
  net_device   = "virtio-net"
  # The NoCloud seed (label cidata) that gives Packer its login.
  cd_files = ["${var.seed_dir}/user-data", "${var.seed_dir}/meta-data"]
  cd_label = "cidata"
  qemuargs = concat(
    [
      ["-cpu", var.cpu_model],
      # Packer's default forward listens on every address: keep it on loopback.
      ["-netdev", "user,id=user.0,hostfwd=tcp:127.0.0.1:{{ .SSHHostPort }}-:22"],
    ],
    local.kernel_args, local.initrd_args, local.append_args, local.serial_args,
  )
  vnc_bind_address = "127.0.0.1"
  boot_wait        = "1s"

  communicator         = "ssh"
  ssh_username         = var.ssh_username
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = var.ssh_timeout
  shutdown_command     = "${local.as_root}systemctl poweroff"
  shutdown_timeout     = "10m"
}

build {
  sources = ["source.qemu.direct-lvm"]

  provisioner "file" {
    source      = var.deb
    destination = local.remote_deb
  }

  provisioner "shell" {
    environment_vars = local.bake_env
    execute_command  = local.execute
    script           = "${path.root}/../scripts/guest-jobs/bake-provision.sh"
  }

  # Last: nothing of this build's instance and login stays in the image.
  provisioner "shell" {
    environment_vars = local.bake_env
    execute_command  = local.execute
    script           = "${path.root}/../scripts/guest-jobs/bake-cleanup.sh"
  }

  post-processor "manifest" {
    output     = "${local.output_dir}/packer-manifest.json"
    strip_path = true
    custom_data = {
      environment = var.environment
      deb         = basename(var.deb)
      kernel      = var.kernel == "" ? "" : basename(var.kernel)
      initrd      = var.initrd == "" ? "" : basename(var.initrd)
      append      = var.kernel_append
    }
  }
}
