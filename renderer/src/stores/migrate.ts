// The Migrate dialog's state: which domain it is for, the element that opened it (focus goes back
// there), and the one migration it runs: domain.migrate answers only when the guest runs at the
// destination (or with the destination's refusal), while its progress arrives as job.progress in
// the jobs store. Closing the dialog does not stop the migration; the jobs store's toast reports it.
import { defineStore } from 'pinia';
import { computed, nextTick, ref } from 'vue';
import type { JobInfo, MigrationOutcome, Params } from '@shared/api';
import { parseDomainKey, type DomainKey } from '../lib/connections';
import { errorMessage } from '../lib/format';
import { hostConnection } from './api';
import { useJobsStore } from './jobs';

export type MigratePhase = 'form' | 'running' | 'done' | 'failed';

/** What opened the dialog (a menu's button), focused again when it closes. */
export interface Opener {
  focus(): void;
  readonly isConnected: boolean;
}

export const useMigrateStore = defineStore('migrate', () => {
  const host = hostConnection();
  const jobs = useJobsStore();
  /** The domain the dialog is open for; null: closed. */
  const key = ref<DomainKey | null>(null);
  const phase = ref<MigratePhase>('form');
  const outcome = ref<{ destination: string; result: MigrationOutcome; job: JobInfo } | null>(null);
  /** The destination's (or this host's) refusal, in its words. */
  const failure = ref('');
  /** Escape while a migration runs asks first. */
  const confirmingClose = ref(false);
  /** The migration this dialog started: its answer belongs to it only while it is still open for it. */
  let started = 0;
  let opener: Opener | null = null;

  /** The running job of the dialog's domain, from job.progress. */
  const job = computed(() => (key.value ? jobs.byKey[key.value] : undefined));

  function open(domain: DomainKey, from: Opener | null): void {
    key.value = domain;
    phase.value = 'form';
    outcome.value = null;
    failure.value = '';
    confirmingClose.value = false;
    opener = from;
  }

  /** Closes at once, or (while a migration runs and `ask`) asks first. */
  function close(ask = false): void {
    if (ask && phase.value === 'running') {
      confirmingClose.value = true;
      return;
    }
    key.value = null;
    confirmingClose.value = false;
    started++;
    const back = opener;
    opener = null;
    // Once the modal dialog is gone (nothing outside it takes focus while it is open); the opener
    // may have left the page meanwhile.
    void nextTick(() => {
      if (back?.isConnected) back.focus();
    });
  }

  async function migrate(request: Omit<Params<'domain.migrate'>, 'domain'>): Promise<void> {
    if (!key.value || phase.value === 'running') return;
    const { connection, uuid } = parseDomainKey(key.value);
    const mine = ++started;
    phase.value = 'running';
    failure.value = '';
    try {
      const r = await host.call('domain.migrate', { ...request, domain: uuid }, { connection });
      if (mine !== started) return;
      outcome.value = { destination: r.destination, result: r.result, job: r.job };
      phase.value = 'done';
    } catch (err) {
      if (mine !== started) return;
      failure.value = errorMessage(err);
      phase.value = 'failed';
    }
  }

  return { key, phase, outcome, failure, confirmingClose, job, open, close, migrate };
});
