// A libvirt connection with every part of the API mapping it serves (see LibvirtMethods).
import { LibvirtConnection, openLibvirtRpc, type RpcOpener } from './libvirt.js';
import { LibvirtStats } from './libvirt-stats.js';

export function libvirtConnection(uri: string, opener: RpcOpener = openLibvirtRpc): LibvirtConnection {
  const conn = new LibvirtConnection(uri, opener);
  const stats = new LibvirtStats(conn);
  conn.serve(stats.methods());
  conn.stats = stats;
  return conn;
}
