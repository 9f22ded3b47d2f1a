// libvirt's migration procedures on the host's libvirt socket (and its TLS listener): the
// destination's Prepare3 and Finish3 (*_PARAMS), which another Domus host calls while it migrates a
// guest here, and the source's Perform3 with VIR_MIGRATE_PEER2PEER, which is how a libvirt client
// (virsh migrate --p2p) asks this host to migrate one of its guests. A Domus source drives the
// phases itself (migration/source.ts), so the client-managed Begin3/Perform3/Confirm3 are refused
// with that reason.
import type { Host } from '../host.js';
import { invalidArg, operationUnsupported } from '../errors.js';
import type { ListenKind } from '../migration/destination.js';
import { PARAM, Params, VIR_MIGRATE } from '../migration/protocol.js';
import type { ArgsOf, ProcName, RetOf } from '../libvirt/rpc-client.js';
import type { remote_nonnull_domain } from '../libvirt/protocol/remote.js';
import type { DomainSummary } from '../../../shared/api.js';

type Impl<P extends ProcName> = (args: ArgsOf<P>) => RetOf<P> | Promise<RetOf<P>>;
type MigrationProcs =
  | 'REMOTE_PROC_DOMAIN_MIGRATE_BEGIN3_PARAMS'
  | 'REMOTE_PROC_DOMAIN_MIGRATE_PREPARE3_PARAMS'
  | 'REMOTE_PROC_DOMAIN_MIGRATE_PERFORM3_PARAMS'
  | 'REMOTE_PROC_DOMAIN_MIGRATE_FINISH3_PARAMS'
  | 'REMOTE_PROC_DOMAIN_MIGRATE_CONFIRM3_PARAMS';

/** What the procedures need of the session that received them. */
export interface MigrationSessionContext {
  /** Where an engine waiting for a guest listens: beside the unix socket, or on the address the peer reached. */
  listen(): ListenKind;
  /** Runs `f` when the session ends (the source host went away). */
  onClose(f: () => void): void;
  /** The session's view of a domain (libvirt's remote_nonnull_domain). */
  wire(d: DomainSummary): remote_nonnull_domain;
  dom(d: remote_nonnull_domain): DomainSummary;
}

/** The features a Domus host's migration has (virConnectSupportsFeature: MIGRATION_P2P, MIGRATION_V3, MIGRATION_PARAMS). */
export const MIGRATION_FEATURES = [4, 6, 13];

const clientManaged = (): Error => operationUnsupported('Domus hosts migrate peer to peer: the source host runs every phase itself (virsh migrate --p2p, or domus migrate)');

export function migrationProcedures(host: Host, ctx: MigrationSessionContext): { [P in MigrationProcs]: Impl<P> } {
  return {
    REMOTE_PROC_DOMAIN_MIGRATE_BEGIN3_PARAMS: () => {
      throw clientManaged();
    },
    REMOTE_PROC_DOMAIN_MIGRATE_CONFIRM3_PARAMS: () => {
      throw clientManaged();
    },
    REMOTE_PROC_DOMAIN_MIGRATE_PREPARE3_PARAMS: async ({ params, cookie_in, flags }) => {
      const p = new Params(params);
      const xml = p.string(PARAM.DEST_XML);
      if (!xml) throw invalidArg(`migration parameter '${PARAM.DEST_XML}' missing: a Domus host needs the domain's XML`);
      if (flags & VIR_MIGRATE.TUNNELLED) throw operationUnsupported('tunnelled migration: Domus engines stream the guest directly, token-checked');
      const r = await host.migrations.destination.prepare(
        { xml, persistentXml: flags & VIR_MIGRATE.PERSIST_DEST ? p.string(PARAM.PERSIST_XML) ?? xml : undefined, cookie: cookie_in, sharedStorage: !(flags & (VIR_MIGRATE.NON_SHARED_DISK | VIR_MIGRATE.NON_SHARED_INC)), listen: ctx.listen() },
        ctx.onClose,
      );
      return { cookie_out: r.cookie, uri_out: r.uri };
    },
    REMOTE_PROC_DOMAIN_MIGRATE_FINISH3_PARAMS: async ({ params, cancelled }) => {
      const name = new Params(params).string(PARAM.DEST_NAME);
      if (!name) throw invalidArg(`migration parameter '${PARAM.DEST_NAME}' missing`);
      const d = await host.migrations.destination.finish(name, cancelled !== 0);
      return { dom: ctx.wire(d), cookie_out: Buffer.alloc(0) };
    },
    REMOTE_PROC_DOMAIN_MIGRATE_PERFORM3_PARAMS: async ({ dom, dconnuri, params, flags }) => {
      if (!(flags & VIR_MIGRATE.PEER2PEER) || !dconnuri) throw clientManaged();
      const p = new Params(params);
      const d = ctx.dom(dom);
      await host.migrate(d.uuid, {
        destination: dconnuri,
        live: Boolean(flags & VIR_MIGRATE.LIVE),
        postcopy: Boolean(flags & VIR_MIGRATE.POSTCOPY),
        persistent: Boolean(flags & VIR_MIGRATE.PERSIST_DEST),
        undefineSource: Boolean(flags & VIR_MIGRATE.UNDEFINE_SOURCE),
        copyStorageAll: Boolean(flags & VIR_MIGRATE.NON_SHARED_DISK),
        bandwidthMiBs: p.ull(PARAM.BANDWIDTH) || undefined,
      });
      return { cookie_out: Buffer.alloc(0) };
    },
  };
}
