# Bake a direct-lvm machine image: a base disk image with cloud-init, plus lvm2,
# thin-provisioning-tools, the container runtime and direct-lvm, registered with
# cloud-init by `direct-lvm image-setup`. The bake makes no pool and never starts the
# runtime: each instance gets its pool on first boot from its user-data (see README.md).
#
# scripts/bake fills every variable; by hand:
#   packer build -var environment=dev -var base_image=... -var wheel=... \
#     -var seed_dir=... -var ssh_private_key_file=... packer/

packer {
  required_version = ">= 1.6.6"
}

# --- base image --------------------------------------------------------------------

variable "base_image" {
  type        = string
  description = "Path or URL of the base disk image (raw or qcow2) with cloud-init and sshd."
}

variable "base_image_checksum" {
  type        = string
  default     = "none"
  description = "Checksum of base_image, e.g. \"sha256:...\"; \"none\" skips the check."
}

variable "kernel" {
  type        = string
  default     = ""
  description = "Kernel to boot directly, for a base image without a bootloader; \"\" boots the disk."
}

variable "initrd" {
  type        = string
  default     = ""
  description = "Initrd for kernel; only used with kernel."
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
}

# --- environment -------------------------------------------------------------------

variable "environment" {
  type        = string
  description = "The direct-lvm environment (environments/NAME.yaml) the image is baked for."
}

variable "wheel" {
  type        = string
  description = "The direct_lvm wheel to install in the image."
}

variable "packages" {
  type        = list(string)
  default     = ["lvm2", "dmeventd", "thin-provisioning-tools", "docker.io", "python3-pip", "python3-jinja2", "python3-yaml", "python3-jsonschema"]
  description = "Debian packages the image needs; installed with apt only when missing."
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
}

variable "ssh_username" {
  type        = string
  default     = "root"
  description = "User the seed authorizes Packer's key for; another user needs passwordless sudo."
}

variable "ssh_private_key_file" {
  type        = string
  description = "Private half of the throw-away key in seed_dir's user-data."
}

variable "ssh_key_marker" {
  type        = string
  description = "Comment of that key in authorized_keys: its line is removed at the end of the bake."
}

# --- machine -----------------------------------------------------------------------

variable "accelerator" {
  type        = string
  default     = "kvm"
  description = "qemu accelerator: kvm, or tcg where there is no KVM (slow)."
}

variable "cpu_model" {
  type    = string
  default = "max"
}

variable "cpus" {
  type    = number
  default = 2
}

variable "memory" {
  type    = number
  default = 2048
}

variable "ssh_timeout" {
  type    = string
  default = "30m"
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
}

locals {
  output_dir  = var.output_dir != "" ? var.output_dir : "output-${var.environment}"
  image_name  = var.image_name != "" ? var.image_name : "direct-lvm-${var.environment}.qcow2"
  remote_whl  = "/tmp/${basename(var.wheel)}"
  kernel_args = var.kernel == "" ? [] : [["-kernel", var.kernel]]
  initrd_args = var.kernel == "" || var.initrd == "" ? [] : [["-initrd", var.initrd]]
  append_args = var.kernel == "" || var.kernel_append == "" ? [] : [["-append", var.kernel_append]]
  serial_args = var.serial_log == "" ? [] : [["-serial", "file:${var.serial_log}"]]
  as_root     = var.ssh_username == "root" ? "" : "sudo "
  execute     = "chmod +x {{ .Path }}; ${local.as_root}env {{ .Vars }} {{ .Path }}"
  bake_env = [
    "BAKE_PACKAGES=${join(" ", var.packages)}",
    "BAKE_UNITS=${join(" ", var.enable_units)}",
    "BAKE_WHEEL=${local.remote_whl}",
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
    source      = var.wheel
    destination = local.remote_whl
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
      wheel       = basename(var.wheel)
      kernel      = var.kernel == "" ? "" : basename(var.kernel)
      initrd      = var.initrd == "" ? "" : basename(var.initrd)
      append      = var.kernel_append
    }
  }
}
