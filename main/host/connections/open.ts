// A libvirt connection with every part of the API mapping it serves (see LibvirtMethods).
import { LibvirtConnection, openLibvirtRpc, type RpcOpener } from './libvirt.js';

export function libvirtConnection(uri: string, opener: RpcOpener = openLibvirtRpc): LibvirtConnection {
  return new LibvirtConnection(uri, opener);
}
