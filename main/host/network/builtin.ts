// Where a network's definition comes from until network definitions are managed (net-define,
// net-start, net-list: the next part of the network work): `<home>/networks/<name>.xml` (the definitions directory) when such a
// file exists, else the built-in `default` network below, which is libvirt's own default.xml
// without its <forward mode='nat'/>: the network is isolated for now. Guests on it reach each other
// and the gateway (DHCP, DNS for the network's own names, ping), not the host or the outside,
// because outbound NAT is not built yet. This file is the only place the definition lives.
import fs from 'node:fs';
import path from 'node:path';
import type { SwitchConfig } from '../../netswitch/protocol.js';
import { parseNetworkXml } from './network-xml.js';

const DEFAULT_NETWORK_XML = `<network>
  <name>default</name>
  <mac address='52:54:00:d0:4d:01'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>
`;

/** The switch configuration of the network an interface names, or undefined when there is no such network. */
export function networkConfig(definitions: string, name: string): SwitchConfig | undefined {
  const file = path.join(definitions, `${name}.xml`);
  if (fs.existsSync(file)) return parseNetworkXml(fs.readFileSync(file, 'utf8'), file);
  return name === 'default' ? parseNetworkXml(DEFAULT_NETWORK_XML, 'the built-in default network') : undefined;
}
