#!/bin/bash
# Install the Debian 12 (bookworm) packages that Domus's tests and the sample-guest build need.
#
#   build/install-deps.sh            # the full list below
#   build/install-deps.sh PKG...     # only these (build/guests/build-guests.sh uses this)
#
# Idempotent and fast: when every package is already installed (checked with dpkg-query) and the i386
# architecture is enabled, apt is not run at all. When something is missing:
#   - as root: adds the i386 architecture if needed, runs `apt-get update` and `apt-get install`;
#   - not root: prints the exact commands to run with sudo and exits 1.
#
# Why i386: the guest kernel and busybox are i386 packages fetched with `apt-get download` (see
# build/guests/build-guests.sh); nothing i386 is installed on the host.
#
# What the packages are for:
#   chromium                      Electron/e2e browser tests
#   seabios                       BIOS for the v86 emulator (/usr/share/seabios/bios.bin, vgabios-stdvga.bin)
#   xorriso isolinux              tiny.iso (ISOLINUX, El Torito + isohybrid MBR)
#   syslinux syslinux-common      mbr.bin, ldlinux.c32 and the mtools-based `syslinux` installer (disk.img)
#   extlinux                      reference installer for `build-guests.sh --extlinux-mount`
#   mtools dosfstools             the scratch FAT image used to obtain ldlinux.sys without mounting
#   cpio                          initrd.gz
#   e2fsprogs fdisk               disk.img: mkfs.ext2 -d, debugfs, e2fsck, sfdisk
#   xz-utils kmod util-linux      .ko.xz handling, modinfo (module dependency check), losetup/mount
#   qemu-system-x86 qemu-utils    the QEMU engine (TCG here), qemu-img, and the VNC benchmark's anchor
#   vncsnapshot                   a stock VNC client that must read a Domus guest's framebuffer
#   genisoimage                   ISO 9660 test images (Rock Ridge, Joliet) for the disk-image reader
#   libvirt-daemon                libvirtd and virtlogd: the real peer of the libvirt RPC client tests
#   libvirt-daemon-driver-qemu    libvirtd's QEMU driver, so qemu:///system opens and domains define
#   libvirt-clients               Debian's virsh, which the tests run beside Domus's client
#   dnsmasq-base iptables         what libvirtd's network driver runs when a test starts a network (in its own netns)
#   iproute2                      `ip`: the test libvirtd's netns gets its loopback up; tests look at bridges inside it
#   libxml2-utils                 xmllint, which virt-xml-validate needs to check domain XML
#   openssh-server openssh-client sshd on 127.0.0.1 and ssh for the qemu+ssh:// transport tests
#   netcat-openbsd                `nc -U`, the far side of qemu+ssh:// when the URI names a socket (libvirt's netcat proxy)
#   openssl                       the test CA and certificates for the qemu+tls:// tests
#   ovmf                          UEFI firmware for QEMU guests (<os firmware='efi'>), with QEMU's firmware descriptors
#   gdb binutils                  Debian's gdb and readelf, which must read a guest core dump (domus dump)
#   osinfo-db                     libosinfo's OS database (/usr/share/osinfo): the wizard's OS detection and
#                                 presets; `npm start` runs without it (then no detection, said in the wizard)
set -euo pipefail

DEFAULT_PKGS=(chromium seabios xorriso isolinux syslinux syslinux-common extlinux mtools cpio
              e2fsprogs fdisk dosfstools xz-utils kmod util-linux
              qemu-system-x86 qemu-utils vncsnapshot genisoimage ovmf
              libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libxml2-utils dnsmasq-base iptables iproute2
              openssh-server openssh-client netcat-openbsd openssl gdb binutils osinfo-db)
if [ $# -gt 0 ]; then PKGS=("$@"); else PKGS=("${DEFAULT_PKGS[@]}"); fi

missing=()
for p in "${PKGS[@]}"; do
  # "ii " = desired install, currently installed; anything else (absent, half-configured, rc) is missing
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  [ "$status" = "ii " ] || missing+=("$p")
done
need_i386=0
dpkg --print-foreign-architectures | grep -qx i386 || need_i386=1

if [ ${#missing[@]} -eq 0 ] && [ $need_i386 -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present, i386 architecture enabled"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing:${missing[*]:+ ${missing[*]}}$([ $need_i386 -eq 1 ] && echo ' (and the i386 architecture)'). Run as root:" >&2
  [ $need_i386 -eq 0 ] || echo "sudo dpkg --add-architecture i386" >&2
  echo "sudo apt-get update" >&2
  [ ${#missing[@]} -eq 0 ] || echo "sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt/dpkg (unattended-upgrades, another install) instead of failing at once.
APT=(apt-get -o DPkg::Lock::Timeout=900)
if [ $need_i386 -eq 1 ]; then
  echo "install-deps: dpkg --add-architecture i386"
  dpkg --add-architecture i386
fi
echo "install-deps: apt-get update"
# Tolerated failure: the bookworm-security i386 index has been seen failing transiently with
# "File has unexpected size ... Mirror sync in progress?". Everything used here comes from bookworm
# main, and a real problem makes the install below (or `apt-get download`) fail.
"${APT[@]}" update || echo "install-deps: warning: apt-get update reported errors (continuing)" >&2
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install -y --no-install-recommends ${missing[*]}"
  "${APT[@]}" install -y --no-install-recommends "${missing[@]}"
fi
echo "install-deps: done"
