#!/usr/bin/env node
// Install the SYSLINUX boot loader into an ext2 filesystem IMAGE without mounting it, i.e. do what
// `extlinux --install <dir>` does on a mounted filesystem. Used by build-guests.sh for disk.img.
//
// Why: extlinux only works on a mounted filesystem. It needs the physical sectors of ldlinux.sys
// (FIEMAP/FIBMAP on the open file), then writes the boot sector to the block device that /proc/mounts
// names. Loop mounts need root and often fail in containers. The mount-free route below only needs the
// Debian tools e2fsprogs (mkfs.ext2 -d, debugfs), dosfstools + mtools + syslinux:
//
//   1. The mtools-based `syslinux` installer (no mount, no root) installs into a scratch FAT image.
//      From it we take ldlinux.sys (same core image as extlinux's, followed by the 2-sector ADV) and
//      the boot sector code.
//   2. build-guests.sh puts that ldlinux.sys into the ext2 image with `mkfs.ext2 -d`.
//   3. This script asks `debugfs` for the file's block map and re-patches ldlinux.sys in place for
//      the new location. It writes the boot sector (with its fake-FAT BPB geometry) into the first
//      512 bytes of the ext2 filesystem, which ext2 leaves unused. This follows libinstaller/syslxmod.c
//      syslinux_patch() and extlinux/main.c patch_file_and_bootblock()/install_bootblock() of
//      syslinux 6.04.
//
// Checked: run on a copy of an image on which `extlinux --install /mnt/boot` had just run (loop
// device with offset 2048 sectors; Debian extlinux 6.04~git20190206-3+b1), it reproduced the whole
// partition image byte for byte. `build-guests.sh --extlinux-mount` keeps that reference route.
// --dir is the install directory as extlinux records it: no trailing slash ("/boot").
//
// usage: node extlinux-ext2.mjs --image part.img --file /boot/ldlinux.sys --dir /boot \
//          --template-sys ldlinux.sys.fat --template-bss bootsect.fat \
//          [--hidden 2048] [--heads 64] [--sectors 32]
//   --hidden: the partition's start LBA (the boot sector adds it to the filesystem-relative sectors;
//   mbr.bin also passes the partition entry in DS:SI, and the boot code prefers that).
import fs from "node:fs";
import { execFileSync } from "node:child_process";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
for (const k of ["image", "file", "dir", "template-sys", "template-bss"])
  if (!args[k]) { console.error(`extlinux-ext2: missing --${k}`); process.exit(2); }
const hidden = +(args.hidden ?? 0), heads = +(args.heads ?? 64), sectors = +(args.sectors ?? 32);

const SECTOR = 512;
const LDLINUX_MAGIC = 0x3eb202fe;
const die = (m) => { console.error("extlinux-ext2: " + m); process.exit(1); };

// ---- the template core image (ldlinux.sys = boot image + 2 ADV sectors) and boot sector ----
const sys = Buffer.from(fs.readFileSync(args["template-sys"]));
const bss = fs.readFileSync(args["template-bss"]);
if (bss.length < SECTOR || bss.readUInt16LE(510) !== 0xaa55) die("template boot sector has no 55AA signature");
let pa = -1;                                   // struct patch_area (syslxint.h)
for (let o = 0; o + 4 <= sys.length; o += 4) if (sys.readUInt32LE(o) === LDLINUX_MAGIC) { pa = o; break; }
if (pa < 0) die("LDLINUX_MAGIC not found in template ldlinux.sys");
const bootImageLen = sys.length - 2 * SECTOR;  // everything but the ADV
const nsect = Math.ceil(bootImageLen / SECTOR) + 2;
const dw = bootImageLen >> 2;
if (sys.readUInt16LE(pa + 8) !== nsect - 2 || sys.readUInt32LE(pa + 12) !== dw)
  die(`template ldlinux.sys layout unexpected (size ${sys.length}, data_sectors ${sys.readUInt16LE(pa + 8)}, dwords ${sys.readUInt32LE(pa + 12)})`);
const epa = sys.readUInt16LE(pa + 22);         // struct ext_patch_area
const E = (off) => sys.readUInt16LE(epa + off);
const advptroffset = E(0), diroffset = E(2), dirlen = E(4), subvoloffset = E(6), subvollen = E(8),
  secptroffset = E(10), secptrcnt = E(12), sect1ptr0 = E(14), sect1ptr1 = E(16);

// ---- the ext2 image ----
const fd = fs.openSync(args.image, "r+");
const sb = Buffer.alloc(1024);
fs.readSync(fd, sb, 0, 1024, 1024);
if (sb.readUInt16LE(56) !== 0xef53) die(`${args.image} is not an ext2/3/4 filesystem`);
const bs = 1024 << sb.readUInt32LE(24);
const totalSectors = Math.floor(fs.fstatSync(fd).size / SECTOR);

// block map of the file, via debugfs (read-only)
const nblocks = Math.ceil(nsect * SECTOR / bs);
const cmds = Array.from({ length: nblocks }, (_, i) => `bmap ${args.file} ${i}`).join("\n") + "\n";
const out = execFileSync("debugfs", ["-f", "-", args.image], { input: cmds, stdio: ["pipe", "pipe", "pipe"] }).toString();
const blocks = out.split("\n").filter((l) => /^\d+$/.test(l.trim())).map(Number);
if (blocks.length !== nblocks || blocks.some((b) => !b)) die(`debugfs bmap of ${args.file} failed:\n${out}`);
const sectp = [];
for (let i = 0; i < nsect; i++) {
  const byte = i * SECTOR;
  sectp.push(blocks[Math.floor(byte / bs)] * (bs / SECTOR) + Math.floor((byte % bs) / SECTOR));
}

// ---- syslinux_patch() ----
const boot = Buffer.alloc(SECTOR);             // boot sector: head + code from the template, BPB zeroed
bss.copy(boot, 0, 0, 11);                      // bsJump + bsOemName
bss.copy(boot, 90, 90, SECTOR);                // bs32.Code .. bsSignature
boot.writeUInt32LE(sectp[0] >>> 0, sect1ptr0);
boot.writeUInt32LE(Math.floor(sectp[0] / 2 ** 32), sect1ptr1);
const rest = sectp.slice(1);

sys.writeUInt16LE(nsect - 2, pa + 8);          // data_sectors (not counting the ADV)
sys.writeUInt16LE(2, pa + 10);                 // adv_sectors
sys.writeUInt32LE(dw, pa + 12);                // dwords

// sector extents (generate_extents): 10-byte {u64 lba, u16 len}; an extent may not cross 64 KiB
sys.fill(0, secptroffset, secptroffset + secptrcnt * 10);
let ex = 0;
{
  let addr = 0x8000, base = addr, lba = 0, len = 0;
  const put = () => {
    if (ex >= secptrcnt) die("too many extents for the patch area (file too fragmented)");
    const o = secptroffset + ex * 10;
    sys.writeBigUInt64LE(BigInt(lba), o);
    sys.writeUInt16LE(len, o + 8);
    ex++;
  };
  for (let i = 0; i < nsect - 1 - 2; i++) {
    const sect = rest[i];
    if (len) {
      const xbytes = (len + 1) * SECTOR;
      if (sect === lba + len && xbytes < 65536 && ((addr ^ (base + xbytes - 1)) & 0xffff0000) === 0) {
        len++; addr += SECTOR; continue;
      }
      put();
    }
    base = addr; lba = sect; len = 1; addr += SECTOR;
  }
  if (len) put();
}
sys.writeBigUInt64LE(BigInt(rest[nsect - 1 - 2]), advptroffset);      // ADV copies
sys.writeBigUInt64LE(BigInt(rest[nsect - 1 - 1]), advptroffset + 8);

const dir = Buffer.from(args.dir + "\0");                          // path of the install dir in the fs
if (dir.length > dirlen) die("install directory path too long");
dir.copy(sys, diroffset);
if (subvollen) sys[subvoloffset] = 0;                              // extlinux passes "" (not btrfs)

sys.writeUInt32LE(0, pa + 16);
let csum = LDLINUX_MAGIC;
for (let i = 0; i < dw; i++) csum = (csum - sys.readUInt32LE(i * 4)) >>> 0;
sys.writeUInt32LE(csum, pa + 16);

// ---- fake FAT BPB (patch_file_and_bootblock) ----
boot.writeUInt16LE(totalSectors >= 65536 ? 0 : totalSectors, 19);  // bsSectors
boot.writeUInt32LE(totalSectors, 32);                               // bsHugeSectors
boot.writeUInt16LE(SECTOR, 11);                                     // bsBytesPerSec
boot.writeUInt16LE(sectors, 24);                                    // bsSecPerTrack
boot.writeUInt16LE(heads, 26);                                      // bsHeads
boot.writeUInt32LE(hidden, 28);                                     // bsHiddenSecs

// ---- write ldlinux.sys in place (same blocks) and the boot sector ----
for (let i = 0; i < nsect; i++) fs.writeSync(fd, sys, i * SECTOR, SECTOR, sectp[i] * SECTOR);
fs.writeSync(fd, boot, 0, SECTOR, 0);
fs.fsyncSync(fd);
fs.closeSync(fd);

// read back through the filesystem as a check
const back = execFileSync("debugfs", ["-R", `cat ${args.file}`, args.image], { stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 24 });
if (!back.equals(sys)) die("read-back of the patched ldlinux.sys differs");
console.log(`extlinux-ext2: ${args.file} (${nsect} sectors, first at fs sector ${sectp[0]}, ${ex} extent(s)) ` +
  `patched; boot sector written (hidden=${hidden} heads=${heads} sectors=${sectors} total=${totalSectors})`);
