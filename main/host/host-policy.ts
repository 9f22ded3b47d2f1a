// What the host does with domains when it starts and stops, as libvirt's autostart and
// libvirt-guests do: autostart domains start with the host; at host stop each running domain
// follows its policy (shut down cleanly, save, or keep running detached).
import type { HostStopProgress } from '../../shared/api.js';
import { onHostStop } from './domain/domus-metadata.js';
import type { SaveRestore } from './jobs/save-restore.js';
import { DEFAULT_SHUTDOWN_TIMEOUT_SEC, type Lifecycle } from './lifecycle.js';
import { log } from './log.js';
import type { DomainRegistry, HostEventBus } from './registry.js';

export class HostPolicy {
  constructor(
    private readonly registry: DomainRegistry,
    private readonly lifecycle: Lifecycle,
    private readonly saves: SaveRestore,
    private readonly events: HostEventBus,
  ) {}

  /** Starts the autostart domains that are not running (a failure is logged, the others still start). */
  async autostartAll(): Promise<void> {
    for (const rec of this.registry.records()) {
      if (!rec.live && this.registry.autostart(rec.doc.config.uuid)) {
        await this.lifecycle.start(rec.doc.config.uuid).catch((err: Error) => log('error', `autostart of '${rec.doc.config.name}' failed: ${err.message}`));
      }
    }
  }

  /**
   * Host stop (app quit, daemon stop): every running domain follows its policy: shutdown (clean,
   * forced after the timeout), save (managed save, restored at next start) or keep (left running).
   */
  async stopAll(timeoutSec = DEFAULT_SHUTDOWN_TIMEOUT_SEC): Promise<HostStopProgress[]> {
    const running = this.registry.records().filter((r) => r.live);
    const progress: HostStopProgress[] = running.map((r) => ({
      uuid: r.doc.config.uuid,
      name: r.doc.config.name,
      policy: r.persistent ? onHostStop(r.liveDoc ?? r.doc) : onHostStop(r.doc) === 'keep' ? 'keep' : 'shutdown',
      step: 'pending',
    }));
    const report = (): void => void this.events.emit('host.stopping', { domains: progress.map((p) => ({ ...p })) });
    report();
    await Promise.all(
      progress.map(async (p) => {
        try {
          if (p.policy === 'keep') {
            this.registry.lookup(p.uuid).live?.detach();
          } else if (p.policy === 'save') {
            p.step = 'saving';
            report();
            await this.saves.managedSave(p.uuid);
          } else {
            p.step = 'shutting-down';
            report();
            const stopped = this.lifecycle.whenStopped(p.uuid);
            await this.lifecycle.shutdown(p.uuid, { timeoutSec });
            const end = await stopped;
            if (end.domain.reason === 'destroyed') {
              p.forced = true;
              p.message = end.detail;
            }
          }
          p.step = 'done';
        } catch (err) {
          p.step = 'failed';
          p.message = (err as Error).message;
          log('error', `host stop: '${p.name}' (${p.policy}) failed: ${p.message}`);
        }
        report();
      }),
    );
    return progress;
  }
}
