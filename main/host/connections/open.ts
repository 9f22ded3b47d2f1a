// A libvirt connection with every part of the API mapping it serves (see LibvirtMethods).
import { LibvirtConnection, openLibvirtRpc, type RpcOpener } from './libvirt.js';
import { consoleMethods } from './libvirt-console.js';

export function libvirtConnection(uri: string, opener: RpcOpener = openLibvirtRpc): LibvirtConnection {
  const conn = new LibvirtConnection(uri, opener);
  conn.serve(consoleMethods(conn));
  return conn;
}
