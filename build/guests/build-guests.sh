#!/bin/bash
# Build the Domus sample guest from Debian 12 packages (fetched with `apt-get download`, nothing else):
#
#   build/guests/vmlinuz    Debian's i686 (non-PAE) kernel, whatever linux-image-686:i386 points to
#   build/guests/initrd.gz  busybox initramfs (newc cpio + gzip); /init is build/guests/files/init, the guest
#                           agent /sbin/domus-agent is build/guests/files/domus-agent
#   build/guests/tiny.iso   ISOLINUX ISO (El Torito + isohybrid MBR) booting vmlinuz + initrd.gz
#   build/guests/disk.img   raw disk: MBR (syslinux mbr.bin) + one bootable ext2 partition at sector
#                           2048 with /boot/{vmlinuz,initrd.gz,extlinux.conf} and EXTLINUX installed
#                           (vmlinuz-<ver> and initrd.img-<ver> are hard links to the same files)
#   build/guests/vmlinuz-amd64  Debian's x86_64 kernel, whatever linux-image-amd64 points to (for the QEMU
#                           engine; v86 emulates a 32-bit CPU and refuses it)
#   build/guests/initrd-amd64.gz  the same initramfs (same /init, agent and banner) built from the amd64
#                           busybox-static and the amd64 kernel's modules
#   build/guests/disk-modules.cpio.gz  a second initramfs archive (not in initrd.gz, so the sample boots
#                           as fast as before) with the IDE disk/CD-ROM and ext2/ext4/iso9660 drivers and
#                           /sbin/domus-disks, which loads them; appended to initrd.gz
#                           (`cat initrd.gz disk-modules.cpio.gz`, the kernel unpacks both) when a test
#                           needs the guest to use its disks
#
# usage: build/guests/build-guests.sh [--force] [--extlinux-mount]
#   --force           rebuild every output (otherwise an output newer than all its inputs is kept)
#   --extlinux-mount  install EXTLINUX with the real `extlinux --install` on a loop mount (root only)
#                     instead of the default mount-free route (files/extlinux-ext2.mjs); kept as the
#                     reference to check the mount-free route against
#
# Needs: the Debian packages listed in REQUIRED_PKGS below (build/install-deps.sh installs them, as
# root), node (for files/extlinux-ext2.mjs), and the i386 architecture in apt with an updated package
# index (for `apt-get download ...:i386`). Root is needed only for installing missing packages and for
# --extlinux-mount. .debs are cached in build/guests/debs/ and scratch files go to build/guests/work/;
# everything in build/guests/ except *.sh and files/ is git-ignored.
#
# The outputs are reproducible: fixed timestamps (SOURCE_DATE_EPOCH, default = the kernel's mtime in
# its .deb), fixed UUIDs/volume ids, sorted cpio, gzip -n.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
FILES=$HERE/files
DEBS=$HERE/debs
WORK=$HERE/work
SELF=$HERE/build-guests.sh

# Kernel command line for the BIOS boot loaders (PV boots pass their own cmdline to v86).
# cryptomgr.notests + noisapnp save about 3 s of boot time in v86 (crypto self-tests, ISA PnP probe).
CMDLINE_FAST="cryptomgr.notests noisapnp tsc=reliable mitigations=off"
CMDLINE="console=tty0 console=ttyS0,115200 $CMDLINE_FAST"
DISK_MB=16                       # disk.img size; v86 snapshots carry the whole hda, so keep it small
PART_START=2048                  # first sector of the ext2 partition
FS_UUID=d0a05000-6e57-4c1e-8000-000000000001   # fixed for reproducible images
MBR_ID=0x444f4d55                # "DOMU"
# The modules each initramfs needs, by name only: their load order is derived at build time from the
# modules' own metadata (`modinfo -F depends`, plus `softdep pre:` resolved through module aliases),
# topologically sorted, written into the archive (lib/modules/*.order) and loaded from that list by
# /init and /sbin/domus-disks. Debian reorders dependencies between kernel ABIs (6.1.0-57 made virtio
# depend on virtio_ring), so nothing here may list an order by hand.
# initrd*.gz: virtio_pci + virtio_balloon + virtio_console drive v86's/QEMU's balloon and the guest
# agent's console; button (ACPI power button -> KEY_POWER) and evdev (/dev/input/event*) are what
# busybox acpid reads. virtio_console is optional (skipped when a kernel lacks it). The NICs of
# Domus's virtual networks: virtio_net (v86 and QEMU), ne2k_pci (v86's NE2000, QEMU's ne2k_pci) and
# e1000 (QEMU's default NIC); their dependencies (net_failover, failover, 8390) come from the modules.
# pvpanic_mmio drives QEMU's ISA pvpanic device (ACPI QEMU0001): a kernel panic reaches QEMU as
# GUEST_PANICKED (<on_crash>); without that device (v86) it loads and binds nothing.
MODULES=(virtio_pci virtio_balloon virtio_console button evdev virtio_net ne2k_pci e1000 pvpanic_mmio)
OPTIONAL_MODULES=" virtio_console "
# disk-modules.cpio.gz: ata_piix for v86's PIIX IDE, sd_mod (disks), sr_mod (CD-ROM), ext4 (also mounts
# ext2) and isofs. ext4's crc32c comes in as its softdep.
DISK_MODULES=(ata_piix sd_mod sr_mod ext4 isofs)
REQUIRED_PKGS=(cpio xorriso isolinux syslinux syslinux-common mtools dosfstools e2fsprogs fdisk kmod xz-utils)

FORCE=0 VIA_MOUNT=0
for a in "$@"; do
  case $a in
    --force|-f) FORCE=1 ;;
    --extlinux-mount) VIA_MOUNT=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-guests: unknown argument: $a (try --help)" >&2; exit 2 ;;
  esac
done

log() { printf '[build-guests +%3ss] %s\n' "$SECONDS" "$*"; }
die() { echo "build-guests: error: $*" >&2; exit 1; }
# uptodate OUT IN...: true when OUT exists, --force is off and OUT is newer than every IN
uptodate() {
  local out=$1; shift
  [ $FORCE -eq 0 ] && [ -e "$out" ] || return 1
  local f; for f in "$@"; do [ "$out" -nt "$f" ] || return 1; done
}

# ---------------------------------------------------------------- host tools
[ $VIA_MOUNT -eq 0 ] || REQUIRED_PKGS+=(extlinux util-linux)
"$ROOT/build/install-deps.sh" "${REQUIRED_PKGS[@]}" | sed 's/^/  /'   # exits (pipefail) if something is missing
command -v node >/dev/null || die "node is required (for files/extlinux-ext2.mjs)"
[ $VIA_MOUNT -eq 0 ] || [ "$(id -u)" -eq 0 ] || die "--extlinux-mount needs root"
mkdir -p "$DEBS" "$WORK"

# ---------------------------------------------------------------- .debs (apt-get download)
APT_DL=(apt-get download)
[ "$(id -u)" -ne 0 ] || APT_DL=(apt-get -o APT::Sandbox::User=root download)  # no "_apt can't write" warning
# fetch_deb PKG ARCH VERSION: print the path of PKG_VERSION_ARCH.deb in $DEBS, downloading it if needed.
# An empty VERSION (apt has no index for ARCH) falls back to the newest cached .deb of PKG.
fetch_deb() {
  local pkg=$1 arch=$2 ver=$3 f
  if [ -z "$ver" ]; then
    f=$(ls "$DEBS/${pkg}_"*"_$arch.deb" 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$f" ] || die "apt knows no $pkg:$arch. Enable $arch and refresh the index (as root):
  dpkg --add-architecture $arch && apt-get update"
    echo "build-guests: warning: apt has no $pkg:$arch, using cached $(basename "$f")" >&2
    echo "$f"; return
  fi
  f="$DEBS/${pkg}_${ver//:/%3a}_${arch}.deb"    # apt-get download's file name (epoch ':' -> %3a)
  if [ ! -s "$f" ]; then
    log "apt-get download $pkg:$arch=$ver" >&2
    (cd "$DEBS" && "${APT_DL[@]}" "$pkg:$arch=$ver" >&2) || die "apt-get download $pkg:$arch=$ver failed"
    [ -s "$f" ] || die "apt-get download did not produce $f"
  fi
  echo "$f"
}

# The kernel packages have the ABI in their names (linux-image-6.1.0-NN-686, ...-amd64); resolve each
# through its metapackage, whose "Depends: linux-image-6.1.0-NN-FLAVOUR (= VERSION)" also gives the
# version, so the build follows Debian's updates. (One apt-cache call: without a pkgcache.bin each one
# costs ~2 s.)
APT_INFO=$(apt-cache show --no-all-versions linux-image-686:i386 busybox-static:i386 \
  linux-image-amd64:amd64 busybox-static:amd64 2>/dev/null || true)
# apt_record PKG ARCH: apt's record of PKG for ARCH (empty when the index has none)
apt_record() {
  awk -v p="$1" -v a="$2" 'BEGIN { RS = "" }
    $0 ~ ("(^|\n)Package: " p "\n") && $0 ~ ("\nArchitecture: " a "(\n|$)") { print; exit }' <<<"$APT_INFO"
}
# kernel_deb FLAVOUR ARCH: print the path of the .deb that linux-image-FLAVOUR:ARCH points to
kernel_deb() {
  local flavour=$1 arch=$2 pkg= ver=
  read -r pkg ver < <(apt_record "linux-image-$flavour" "$arch" | awk '/^Depends:/ && match($0, /linux-image-[0-9][^ ,]* \(= [^)]*\)/) {
    split(substr($0, RSTART, RLENGTH), a, /[ ()=]+/); print a[1], a[2]; exit }') || true
  if [ -z "$pkg" ]; then
    pkg=$(ls "$DEBS"/linux-image-[0-9]*-"${flavour}_"*"_$arch.deb" 2>/dev/null | sort -V | tail -1 | xargs -r basename | cut -d_ -f1 || true)
    ver=
    [ -n "$pkg" ] || die "cannot resolve linux-image-$flavour:$arch (no $arch apt index). As root run:
  dpkg --add-architecture $arch && apt-get update"
  fi
  fetch_deb "$pkg" "$arch" "$ver"
}
busybox_deb() {   # ARCH
  fetch_deb busybox-static "$1" "$(apt_record busybox-static "$1" | awk '/^Version:/ { print $2; exit }')"
}
KDEB=$(kernel_deb 686 i386)
BBDEB=$(busybox_deb i386)
KDEB64=$(kernel_deb amd64 amd64)
BBDEB64=$(busybox_deb amd64)
log "kernels: $(basename "$KDEB") $(basename "$KDEB64")"
log "busybox: $(basename "$BBDEB") $(basename "$BBDEB64")"

# ---------------------------------------------------------------- unpack (only what is needed)
# Module paths under lib/modules/VER/kernel/: what initrd*.gz loads (MODULES), and what
# disk-modules.cpio.gz loads (DISK_MODULES, i686 only).
BOOT_MODULE_PATHS=('drivers/virtio/*' 'drivers/char/virtio_console.ko*' 'drivers/acpi/button.ko*' 'drivers/input/evdev.ko*'
  'drivers/net/virtio_net.ko*' 'drivers/net/net_failover.ko*' 'net/core/*' 'drivers/net/ethernet/8390/*' 'drivers/net/ethernet/intel/e1000/*'
  'drivers/misc/pvpanic/*')
DISK_MODULE_PATHS=('drivers/ata/*' 'drivers/scsi/*' 'drivers/cdrom/*' 'fs/ext4/*' 'fs/jbd2/*' 'fs/mbcache.ko*' 'fs/isofs/*'
  'lib/*' 'block/*' 'crypto/*')
# unpack_kernel DEB DIR MODULE_PATH...: /boot/vmlinuz-* and those module paths; prints the kernel release
unpack_kernel() {
  local deb=$1 dir=$2 v; shift 2
  if ! uptodate "$dir/.stamp" "$deb" "$SELF"; then
    log "unpacking $(basename "$deb") (vmlinuz + modules)" >&2
    rm -rf "$dir"; mkdir -p "$dir"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir" --wildcards --no-same-owner './boot/vmlinuz-*' "${@/#/./lib/modules/*/kernel/}"
    touch "$dir/.stamp"
  fi
  v=$(ls "$dir"/boot/vmlinuz-* | head -1); v=${v##*/vmlinuz-}
  [ -d "$dir/lib/modules/$v" ] || die "no modules for $v in $(basename "$deb")"
  echo "$v"
}
unpack_busybox() {   # DEB DIR
  uptodate "$2/.stamp" "$1" && return
  log "unpacking $(basename "$1")"
  rm -rf "$2"; mkdir -p "$2"
  dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --no-same-owner ./bin/busybox
  touch "$2/.stamp"
}
KDIR=$WORK/kernel BBDIR=$WORK/busybox KDIR64=$WORK/kernel-amd64 BBDIR64=$WORK/busybox-amd64
KVER=$(unpack_kernel "$KDEB" "$KDIR" "${BOOT_MODULE_PATHS[@]}" "${DISK_MODULE_PATHS[@]}")
KVER64=$(unpack_kernel "$KDEB64" "$KDIR64" "${BOOT_MODULE_PATHS[@]}")
unpack_busybox "$BBDEB" "$BBDIR"
unpack_busybox "$BBDEB64" "$BBDIR64"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$KDIR/boot/vmlinuz-$KVER")}

# ---------------------------------------------------------------- vmlinuz, vmlinuz-amd64
install_vmlinuz() {   # OUT DEB KDIR KVER
  if uptodate "$HERE/$1" "$2"; then log "$1: up to date"; return; fi
  install -m 0644 "$3/boot/vmlinuz-$4" "$HERE/$1.tmp" && mv "$HERE/$1.tmp" "$HERE/$1"
  log "$1: $4 ($(stat -c %s "$HERE/$1") bytes)"
}
install_vmlinuz vmlinuz "$KDEB" "$KDIR" "$KVER"
install_vmlinuz vmlinuz-amd64 "$KDEB64" "$KDIR64" "$KVER64"

# ---------------------------------------------------------------- initrd.gz, initrd-amd64.gz
# newc_node NAME MODE MAJOR MINOR INO: one newc cpio header for a device node (no data). Device
# nodes are written by hand so that building needs no root (mknod). The kernel unpacks several
# concatenated cpio archives in a row.
newc_node() {
  local name=$1 mode=$2 major=$3 minor=$4 ino=$5 ns pad
  ns=$(( ${#name} + 1 ))
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\0' \
    "$ino" "$mode" 0 0 1 "$SOURCE_DATE_EPOCH" 0 0 0 "$major" "$minor" "$ns" 0 "$name"
  pad=$(( (4 - (110 + ns) % 4) % 4 ))
  head -c "$pad" /dev/zero
}
dev_nodes_cpio() {
  newc_node dev/console $((0020600)) 5 1 900001   # the kernel opens it for init's stdin/stdout
  newc_node dev/null    $((0020666)) 1 3 900002
  newc_node dev/ttyS0   $((0020660)) 4 64 900003
  newc_node TRAILER!!!  0 0 0 0
}

# module_file KDIR KVER NAME: the .ko file of module NAME (module names treat - and _ alike), or of the
# module that declares NAME as an alias (softdeps name aliases such as crc32c); empty when none.
module_file() {
  local kdir=$1 kver=$2 name=$3 f alias_re
  f=$(find "$kdir/lib/modules/$kver" \( -name "${name//[-_]/[-_]}.ko" -o -name "${name//[-_]/[-_]}.ko.xz" -o -name "${name//[-_]/[-_]}.ko.zst" \) | sort | head -1)
  if [ -z "$f" ]; then
    alias_re="^${name//[-_]/[-_]}\$"
    for f in $(find "$kdir/lib/modules/$kver" -name '*.ko*' | sort); do
      modinfo -F alias "$f" 2>/dev/null | grep -qE "$alias_re" && { echo "$f"; return; }
    done
    f=
  fi
  echo "$f"
}
# module_deps FILE: the modules FILE needs loaded first, one a line: its hard dependencies, then its
# "pre:" softdeps prefixed with "?" (a softdep the unpacked kernel lacks is skipped, as modprobe does)
module_deps() {
  modinfo -F depends "$1" | tr ',' '\n' | sed '/^$/d'
  modinfo -F softdep "$1" | sed -n 's/.*pre:\(.*\)/\1/p' | sed 's/post:.*//' | tr ' ' '\n' | sed '/^$/d; s/^/?/'
}
# copy_modules KDIR KVER DEST ORDERFILE M...: copy the modules M and everything they depend on from
# the unpacked kernel into DEST (uncompressed), and write their load order (dependencies first, by a
# depth-first topological sort of module_deps) to ORDERFILE; a dependency cycle or a missing module
# fails the build naming it. Modules in OPTIONAL_MODULES the kernel lacks are skipped. Prints the order.
copy_modules() {
  local kdir=$1 kver=$2 dest=$3 order=$4; shift 4
  local -A state=() file=()
  local -a sorted=()
  visit() {   # NAME PARENT (NAME starting with "?": a softdep)
    local m=${1#\?} parent=$2 ko dep base
    ko=$(module_file "$kdir" "$kver" "$m")
    if [ -z "$ko" ]; then
      [ "$1" != "$m" ] && { log "softdep $m of $parent not in $kver (skipped)" >&2; return; }
      [ -z "$parent" ] && [[ $OPTIONAL_MODULES == *" $m "* ]] && { log "module $m not in $kver (optional, skipped)" >&2; return; }
      die "module $m${parent:+ (needed by $parent)} not found in kernel $kver"
    fi
    base=$(basename "$ko"); base=${base%.xz}; base=${base%.zst}; base=${base%.ko}
    case ${state[$base]:-} in
      done) return ;;
      active) die "module dependency cycle through $base in kernel $kver" ;;
    esac
    state[$base]=active
    file[$base]=$ko
    for dep in $(module_deps "$ko"); do visit "$dep" "$base"; done
    state[$base]=done
    sorted+=("$base")
  }
  local m; for m in "$@"; do visit "$m" ""; done
  for m in "${sorted[@]}"; do
    case ${file[$m]} in
      *.xz)  xz -dc "${file[$m]}" >"$dest/$m.ko" ;;
      *.zst) zstd -qdc "${file[$m]}" >"$dest/$m.ko" ;;
      *)     cp "${file[$m]}" "$dest/$m.ko" ;;
    esac
  done
  printf '%s\n' "${sorted[@]}" >"$order"
  echo "${sorted[*]}"
}

# build_initrd OUT KDEB BBDEB KDIR KVER BBDIR QEMU: the busybox initramfs (same /init and agent for every
# kernel) with MODULES of that kernel
build_initrd() {
  local out=$1 kdeb=$2 bbdeb=$3 kdir=$4 kver=$5 bbdir=$6 R=$WORK/${1%.gz}.root mods
  if uptodate "$HERE/$out" "$kdeb" "$bbdeb" "$FILES/init" "$FILES/domus-agent" "$FILES/udhcpc.script" "$SELF"; then log "$out: up to date"; return; fi
  rm -rf "$R"; mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc/udhcpc,dev,proc,sys,tmp,run,root,etc,lib/modules}
  install -m 0755 "$bbdir/bin/busybox" "$R/bin/busybox"
  install -m 0755 "$FILES/init" "$R/init"
  install -m 0755 "$FILES/domus-agent" "$R/sbin/domus-agent"
  install -m 0755 "$FILES/udhcpc.script" "$R/etc/udhcpc/default.script"
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
  printf 'root:x:0:\n' >"$R/etc/group"
  printf 'domus-guest\n' >"$R/etc/hostname"
  mods=$(copy_modules "$kdir" "$kver" "$R/lib/modules" "$R/lib/modules/boot.order" "${MODULES[@]}")
  find "$R" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  { (cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet); dev_nodes_cpio; } \
    | gzip -9 -n >"$HERE/$out.tmp"
  boot_check "$out" "$kdir/boot/vmlinuz-$kver" "$HERE/$out.tmp" "$7"
  mv "$HERE/$out.tmp" "$HERE/$out"
  log "$out: busybox + $kver modules: $mods ($(stat -c %s "$HERE/$out") bytes)"
}

# boot_check NAME KERNEL INITRD QEMU: boot the new initramfs once under QEMU (TCG, with a virtio
# balloon and a virtio console, so their drivers bind) and fail the build if /init reports a module
# that did not load. Without QEMU the check is left to the test harness, which fails a test on the
# same DOMUS-MODULE-FAILED line. no_timer_check: under TCG on a loaded machine the kernel's IO-APIC
# timer check can time out and panic ("IO-APIC + timer doesn't work!"), which says nothing of modules.
boot_check() {
  local name=$1 kernel=$2 initrd=$3 qemu=$4 log=$WORK/${1%.gz}.boot.log pid t=0 failed
  command -v "$qemu" >/dev/null || { log "$name: no $qemu, boot check left to the tests"; return; }
  : >"$log"
  "$qemu" -accel tcg -m 192 -nodefaults -display none -no-reboot -monitor none \
    -serial "file:$log" -device virtio-balloon-pci -device virtio-serial-pci \
    -kernel "$kernel" -initrd "$initrd" -append "console=ttyS0,115200 panic=-1 no_timer_check $CMDLINE_FAST" &
  pid=$!
  until grep -q 'DOMUS-GUEST-READY' "$log" 2>/dev/null; do
    kill -0 $pid 2>/dev/null || { tail -20 "$log" >&2; die "$name: the boot check's QEMU exited before DOMUS-GUEST-READY"; }
    (( t++ < 600 )) || { kill $pid; tail -20 "$log" >&2; die "$name: no DOMUS-GUEST-READY within 300 s in the boot check"; }
    sleep 0.5
  done
  kill $pid; wait $pid 2>/dev/null || true
  failed=$(sed -n 's/.*DOMUS-MODULE-FAILED \([^[:space:]]*\).*/\1/p' "$log" | tr '\n' ' ')
  [ -z "$failed" ] || { grep -iE 'unknown symbol|insmod' "$log" >&2 || true; die "$name: module(s) failed to load at boot: ${failed% } (see $log)"; }
  log "$name: boot check passed in QEMU (all modules loaded, $((t / 2)) s)"
}
build_initrd initrd.gz "$KDEB" "$BBDEB" "$KDIR" "$KVER" "$BBDIR" qemu-system-i386
build_initrd initrd-amd64.gz "$KDEB64" "$BBDEB64" "$KDIR64" "$KVER64" "$BBDIR64" qemu-system-x86_64

if uptodate "$HERE/disk-modules.cpio.gz" "$KDEB" "$FILES/domus-disks" "$SELF"; then
  log "disk-modules.cpio.gz: up to date"
else
  R=$WORK/disk-modules
  rm -rf "$R"; mkdir -p "$R"/{sbin,lib/modules}
  loaded=$(copy_modules "$KDIR" "$KVER" "$R/lib/modules" "$R/lib/modules/disk.order" "${DISK_MODULES[@]}")
  install -m 0755 "$FILES/domus-disks" "$R/sbin/domus-disks"
  find "$R" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  (cd "$R" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -9 -n >"$HERE/disk-modules.cpio.gz.tmp"
  mv "$HERE/disk-modules.cpio.gz.tmp" "$HERE/disk-modules.cpio.gz"
  log "disk-modules.cpio.gz: modules: $loaded ($(stat -c %s "$HERE/disk-modules.cpio.gz") bytes)"
fi

# ---------------------------------------------------------------- boot loader config (ISO + disk)
bootcfg() {   # $1 = "isolinux" | "extlinux"
  cat <<EOF
# $1 configuration of the Domus sample guest (generated by build/guests/build-guests.sh)
SERIAL 0 115200
DEFAULT domus
PROMPT 0
TIMEOUT 0
LABEL domus
  KERNEL /boot/vmlinuz
  APPEND initrd=/boot/initrd.gz $CMDLINE
EOF
}

# ---------------------------------------------------------------- tiny.iso
if uptodate "$HERE/tiny.iso" "$HERE/vmlinuz" "$HERE/initrd.gz" "$SELF"; then
  log "tiny.iso: up to date"
else
  I=$WORK/iso
  rm -rf "$I"; mkdir -p "$I/isolinux" "$I/boot"
  cp "$HERE/vmlinuz" "$HERE/initrd.gz" "$I/boot/"
  cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$I/isolinux/"
  bootcfg isolinux >"$I/isolinux/isolinux.cfg"
  find "$I" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  rm -f "$HERE/tiny.iso.tmp"
  # isolinux.bin is patched by -boot-info-table, so xorriso works on the copy in $I
  # -r: Rock Ridge with uid/gid 0 and normalized permissions (same image whoever builds it)
  xorriso -as mkisofs -quiet -r -o "$HERE/tiny.iso.tmp" -V DOMUS_GUEST \
    -isohybrid-mbr /usr/lib/ISOLINUX/isohdpfx.bin \
    -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table \
    "$I" 2>"$WORK/xorriso.log" || { cat "$WORK/xorriso.log" >&2; die "xorriso failed"; }
  mv "$HERE/tiny.iso.tmp" "$HERE/tiny.iso"
  log "tiny.iso: ISOLINUX, isohybrid ($(stat -c %s "$HERE/tiny.iso") bytes)"
fi

# ---------------------------------------------------------------- disk.img
# Layout: MBR with syslinux's mbr.bin (boots the active partition, passes its entry in DS:SI),
# partition 1 = ext2 at sector 2048, bootable; EXTLINUX boot sector in the partition's first sector,
# /boot/ldlinux.sys + ldlinux.c32 + extlinux.conf + vmlinuz + initrd.gz.
#
# No mount is needed: `mkfs.ext2 -d DIR` fills the filesystem from a directory, and EXTLINUX (which
# normally needs the filesystem mounted, see files/extlinux-ext2.mjs) is installed by patching
# ldlinux.sys for its block map read with debugfs. --extlinux-mount uses the real extlinux on a loop
# mount instead; that route needs root and loop devices, both often missing in containers.
if [ $VIA_MOUNT -eq 0 ] && uptodate "$HERE/disk.img" "$HERE/vmlinuz" "$HERE/initrd.gz" "$SELF" "$FILES/extlinux-ext2.mjs"; then
  log "disk.img: up to date"
else
  D=$WORK/disk
  rm -rf "$D"; mkdir -p "$D/root/boot"
  cp "$HERE/vmlinuz" "$HERE/initrd.gz" "$D/root/boot/"
  # Debian's names too (hard links: no extra space), so a disk without extlinux.conf still boots
  # by pygrub's rule: the newest /boot/vmlinuz-<version> and its /boot/initrd.img-<version>.
  ln "$D/root/boot/vmlinuz" "$D/root/boot/vmlinuz-$KVER"
  ln "$D/root/boot/initrd.gz" "$D/root/boot/initrd.img-$KVER"
  bootcfg extlinux >"$D/root/boot/extlinux.conf"
  part_kb=$(( DISK_MB * 1024 - PART_START / 2 ))

  if [ $VIA_MOUNT -eq 0 ]; then
    # 1. ldlinux.sys and the boot sector code, from the mtools-based `syslinux` installer run on a
    #    scratch FAT image (no mount, no root). Its ldlinux.c32 is the one built with that core (it is
    #    what extlinux writes too; syslinux-common's copy is from a different build and not identical).
    truncate -s 2M "$D/fat.img"
    mkfs.fat -i 444f4d55 "$D/fat.img" >/dev/null
    syslinux --install "$D/fat.img"
    mcopy -n -i "$D/fat.img" ::/ldlinux.sys "$D/ldlinux.sys.fat"
    mcopy -n -i "$D/fat.img" ::/ldlinux.c32 "$D/root/boot/ldlinux.c32"
    chmod 0444 "$D/root/boot/ldlinux.c32"
    dd if="$D/fat.img" of="$D/bootsect.fat" bs=512 count=1 status=none
    # ldlinux.sys is loaded by its sector list, so every block must be allocated. mkfs.ext2 -d turns
    # all-zero blocks into holes, so put in a same-sized 0xFF placeholder; extlinux-ext2.mjs then
    # overwrites it in place with the patched image.
    head -c "$(stat -c %s "$D/ldlinux.sys.fat")" /dev/zero | tr '\0' '\377' >"$D/root/boot/ldlinux.sys"
    chmod 0444 "$D/root/boot/ldlinux.sys"
  fi
  find "$D/root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

  # 2. the ext2 filesystem, filled from $D/root (1 KiB blocks; features that SYSLINUX 6.04 reads)
  truncate -s "${part_kb}K" "$D/part.img"
  E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH mkfs.ext2 -q -F -t ext2 -b 1024 -L DOMUS -U "$FS_UUID" \
    -E "root_owner=0:0,hash_seed=$FS_UUID" -d "$D/root" "$D/part.img" "$part_kb"

  # 3. EXTLINUX
  if [ $VIA_MOUNT -eq 0 ]; then
    node "$FILES/extlinux-ext2.mjs" --image "$D/part.img" --file /boot/ldlinux.sys --dir /boot \
      --template-sys "$D/ldlinux.sys.fat" --template-bss "$D/bootsect.fat" \
      --hidden "$PART_START" --heads 64 --sectors 32 | sed 's/^/  /'
    # Like extlinux, make ldlinux.sys immutable (EXT2_IMMUTABLE_FL) so nothing moves its blocks. Also
    # pin the inode ctimes and owners, which mkfs.ext2 -d copies from the source files (ctime = now,
    # uid = whoever builds).
    { echo "sif /boot/ldlinux.sys flags 0x10"
      (cd "$D/root" && find . -mindepth 1 | LC_ALL=C sort | sed 's|^\.||') | while read -r f; do
        printf 'sif %s ctime @%s\nsif %s uid 0\nsif %s gid 0\n' "$f" "$SOURCE_DATE_EPOCH" "$f" "$f"
      done
    } | E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH debugfs -w -f - "$D/part.img" >/dev/null 2>&1
  else
    MNT=$D/mnt LOOPDEV=
    cleanup() { mountpoint -q "$MNT" && umount "$MNT"; [ -z "$LOOPDEV" ] || losetup -d "$LOOPDEV" 2>/dev/null || true; }
    trap cleanup EXIT
    mkdir -p "$MNT"
    # the loop offset is the partition start, which extlinux reads (LOOP_GET_STATUS64) as bsHiddenSecs
    truncate -s "$(( DISK_MB * 1024 * 1024 ))" "$D/whole.img"
    dd if="$D/part.img" of="$D/whole.img" bs=512 seek="$PART_START" conv=notrunc,sparse status=none
    LOOPDEV=$(losetup --find --show --offset $(( PART_START * 512 )) "$D/whole.img")
    mount -t ext2 "$LOOPDEV" "$MNT"
    extlinux --install "$MNT/boot"
    cleanup; trap - EXIT
    dd if="$D/whole.img" of="$D/part.img" bs=512 skip="$PART_START" conv=notrunc status=none
    log "EXTLINUX installed with extlinux --install on $LOOPDEV (loop mount)"
  fi
  e2fsck -fn "$D/part.img" >"$D/e2fsck.log" 2>&1 || { cat "$D/e2fsck.log" >&2; die "e2fsck found problems in the ext2 image"; }

  # 4. the disk: partition table, mbr.bin, the filesystem at sector $PART_START
  rm -f "$HERE/disk.img.tmp"
  truncate -s "${DISK_MB}M" "$HERE/disk.img.tmp"
  printf 'label: dos\nlabel-id: %s\nunit: sectors\nstart=%s, type=83, bootable\n' "$MBR_ID" "$PART_START" \
    | sfdisk --quiet --no-reread --no-tell-kernel "$HERE/disk.img.tmp"
  dd if=/usr/lib/syslinux/mbr/mbr.bin of="$HERE/disk.img.tmp" bs=440 count=1 conv=notrunc status=none
  dd if="$D/part.img" of="$HERE/disk.img.tmp" bs=512 seek="$PART_START" conv=notrunc,sparse status=none
  mv "$HERE/disk.img.tmp" "$HERE/disk.img"
  log "disk.img: ${DISK_MB} MiB, MBR + ext2 partition at sector $PART_START with EXTLINUX"
fi

log "done: $(cd "$HERE" && ls -l vmlinuz initrd.gz tiny.iso disk.img vmlinuz-amd64 initrd-amd64.gz | awk '{ printf "%s %s bytes; ", $NF, $5 }')"
