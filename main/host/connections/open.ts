// A libvirt connection with every part of the API mapping it serves (see LibvirtMethods).
import { jobMethods } from './libvirt-jobs.js';
import { LibvirtConnection, openLibvirtRpc, type RpcOpener } from './libvirt.js';
import { LibvirtStats } from './libvirt-stats.js';
import { consoleMethods } from './libvirt-console.js';
import { createMethods } from './libvirt-create.js';
import { deviceMethods } from './libvirt-devices.js';
import { capabilityMethods } from './libvirt-capabilities.js';
import { networkMethods } from './libvirt-networks.js';
import { snapshotMethods } from './libvirt-snapshots.js';
import { LibvirtStorage, storageMethods } from './libvirt-storage.js';

export function libvirtConnection(uri: string, opener: RpcOpener = openLibvirtRpc): LibvirtConnection {
  const conn = new LibvirtConnection(uri, opener);
  conn.serve(consoleMethods(conn));
  conn.serve(jobMethods(conn));
  const storage = new LibvirtStorage(conn);
  conn.serve(storageMethods(conn, storage));
  conn.serve(createMethods(conn, storage));
  conn.serve(deviceMethods(conn, storage));
  conn.serve(networkMethods(conn));
  conn.serve(snapshotMethods(conn));
  conn.serve(capabilityMethods(conn));
  const stats = new LibvirtStats(conn);
  conn.serve(stats.methods());
  conn.stats = stats;
  return conn;
}
