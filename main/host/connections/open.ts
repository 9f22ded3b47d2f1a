// A libvirt connection with every part of the API mapping it serves (see LibvirtMethods).
import { jobMethods } from './libvirt-jobs.js';
import { LibvirtConnection, openLibvirtRpc, type RpcOpener } from './libvirt.js';

export function libvirtConnection(uri: string, opener: RpcOpener = openLibvirtRpc): LibvirtConnection {
  const conn = new LibvirtConnection(uri, opener);
  conn.serve(jobMethods(conn));
  return conn;
}
