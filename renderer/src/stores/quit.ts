// Quitting Domus: host.stop applies each running guest's on-stop policy (shut down, save, keep),
// reports it through host.stopping, then closes every connection. Another client (the CLI, a
// second window) may be the one asking; this window then follows the same progress.
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { HostStopProgress } from '@shared/api';
import { ApiCallError } from '@shared/client';
import { isActive } from '../lib/domainState';
import { errorMessage } from '../lib/format';
import { hostConnection } from './api';
import { useDomainsStore } from './domains';

/** idle → confirm → stopping → stopped (the host's connection has closed). */
export type QuitPhase = 'idle' | 'confirm' | 'stopping' | 'stopped';

export const useQuitStore = defineStore('quit', () => {
  const host = hostConnection();
  const phase = ref<QuitPhase>('idle');
  const progress = ref<HostStopProgress[]>([]);
  /** Why the host refused to stop, shown in the confirmation. */
  const refusal = ref('');

  function ask(): void {
    if (phase.value !== 'idle') return;
    refusal.value = '';
    phase.value = 'confirm';
  }

  function cancel(): void {
    if (phase.value === 'confirm') phase.value = 'idle';
  }

  /** What the host will do, known from the domain list until its first host.stopping report. */
  function expectedProgress(): HostStopProgress[] {
    return useDomainsStore()
      .list.filter((d) => isActive(d.state))
      .map((d) => ({ uuid: d.uuid, name: d.name, policy: d.onHostStop, step: 'pending' }));
  }

  async function confirm(): Promise<void> {
    if (phase.value !== 'confirm') return;
    progress.value = expectedProgress();
    phase.value = 'stopping';
    host.expectClose(true);
    try {
      await host.call('host.stop', {});
    } catch (err) {
      // Any other failure is the connection closing before the answer: that is the stop happening.
      if (!(err instanceof ApiCallError)) return;
      host.expectClose(false);
      refusal.value = errorMessage(err);
      phase.value = 'confirm';
    }
  }

  /** After a stop, look for a host again (one may have been started since, or restarted by the shell). */
  function reconnect(): void {
    phase.value = 'idle';
    progress.value = [];
    host.start();
  }

  host.on('host.stopping', ({ domains }) => {
    progress.value = domains;
    if (phase.value === 'idle' || phase.value === 'confirm') {
      // Stopped from elsewhere (the app menu, the CLI, another window): follow along rather than
      // reconnect when the host goes.
      phase.value = 'stopping';
      host.expectClose(true);
    }
  });

  host.onState((state) => {
    if (state === 'closed' && phase.value === 'stopping') phase.value = 'stopped';
  });

  return { phase, progress, refusal, ask, cancel, confirm, reconnect };
});
