// The read-only disk-image reader (the seed's libfsimage): see README "Disk images".
export { FsImageError, type FsImageErrorCode } from './errors.js';
export { DiskImage, type Volume } from './image.js';
export { Filesystem, MAX_FILE_BYTES, type Stat, type ListedEntry, type NodeKind } from './vfs.js';
export type { Partition } from './partitions.js';
export { findBootConfig, parseGrubCfg, parseSyslinux, CONFIG_PATHS, type BootConfig, type ConfigEntry } from './bootconf.js';
export { kernelFacts, type KernelFacts } from './kernel.js';
export { chooseBoot, findKernels, parseBootloaderArgs, versionCompare, BootError, type BootChoice, type BootOptions } from './boot.js';
export { inspectImage } from './inspect.js';
export { readIsoIdentity, type IsoIdentity } from './iso-identity.js';
