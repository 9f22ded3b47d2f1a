// Long operations (save, restore, managed save…) per domain, kept live from job.progress and
// job.completed, of this computer and of the libvirt connections. libvirt runs at most one job per
// domain, so they are keyed by domain (its DomainKey: the UUID, with the connection's URI for a
// libvirt connection's).
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { DomainSummary, JobInfo } from '@shared/api';
import { domainKey, parseDomainKey, type DomainKey } from '../lib/connections';
import { errorMessage } from '../lib/format';
import { hostConnection } from './api';
import { useToastStore } from './toasts';

/** How each operation reads in a sentence: "Saving…", "Could not save", "Saved". */
const OPERATION_WORDS: Record<JobInfo['operation'], { running: string; verb: string; done: string }> = {
  save: { running: 'Saving', verb: 'save', done: 'Saved' },
  managedsave: { running: 'Saving', verb: 'save', done: 'Saved' },
  restore: { running: 'Restoring', verb: 'restore', done: 'Restored' },
  dump: { running: 'Dumping', verb: 'dump', done: 'Dumped' },
  migrate: { running: 'Migrating', verb: 'migrate', done: 'Migrated' },
  clone: { running: 'Cloning', verb: 'clone', done: 'Cloned' },
  upload: { running: 'Uploading', verb: 'upload', done: 'Uploaded' },
  start: { running: 'Starting', verb: 'start', done: 'Started' },
  snapshot: { running: 'Taking a snapshot', verb: 'take a snapshot', done: 'Snapshot taken' },
  'snapshot-revert': { running: 'Reverting to a snapshot', verb: 'revert to the snapshot', done: 'Reverted' },
  backup: { running: 'Backing up', verb: 'back up', done: 'Backed up' },
  unknown: { running: 'Working', verb: 'finish the job', done: 'Done' },
};

export function jobRunningLabel(job: JobInfo): string {
  return OPERATION_WORDS[job.operation].running;
}

/** Job ids remembered as finished, so a progress event that trails its completion is ignored. */
const FINISHED_MEMORY = 64;

/**
 * The states during which a domain has a job whose progress this window may have missed: the
 * host's own steps, and libvirt's paused/saving (libvirt's domains have no steps).
 */
function hasJobStep(domain: DomainSummary): boolean {
  return domain.step === 'saving' || domain.step === 'restoring' || (domain.state === 'paused' && domain.reason === 'saving');
}

export const useJobsStore = defineStore('jobs', () => {
  const host = hostConnection();
  const byKey = ref<Record<DomainKey, JobInfo>>({});
  /** Domains whose job this window asked to abort and that have not finished yet. */
  const aborting = ref<Record<DomainKey, true>>({});
  /** Finished jobs as "connection id": each connection numbers its jobs on its own. */
  const finished: string[] = [];
  const finishedId = (job: JobInfo, connection?: string): string => `${connection ?? ''} ${job.id}`;

  /** `connection`: the libvirt connection the job runs on; absent: this computer. */
  function track(job: JobInfo, connection?: string): void {
    if (job.status !== 'running' || finished.includes(finishedId(job, connection))) return;
    byKey.value[domainKey(connection, job.uuid)] = job;
  }

  function complete(job: JobInfo, connection?: string): void {
    finished.push(finishedId(job, connection));
    if (finished.length > FINISHED_MEMORY) finished.shift();
    const key = domainKey(connection, job.uuid);
    if (byKey.value[key]?.id === job.id) delete byKey.value[key];
    delete aborting.value[key];
    announce(job);
  }

  function announce(job: JobInfo): void {
    const toasts = useToastStore();
    const words = OPERATION_WORDS[job.operation];
    const name = `“${job.domain}”`;
    if (job.status === 'completed') {
      const seconds = (job.elapsedMs / 1000).toFixed(1);
      const hint = job.operation === 'managedsave' ? ' Run restores it where it left off.' : '';
      toasts.push('success', `${words.done} ${name}`, `Finished in ${seconds} s.${hint}`);
    } else if (job.status === 'aborted') {
      toasts.push('info', `Cancelled: ${words.running.toLowerCase()} ${name}`);
    } else {
      toasts.push('error', `Could not ${words.verb} ${name}`, job.error ?? 'The job failed.');
    }
  }

  /** `report`: where a refusal goes (libvirt cannot abort a memory-only dump); a toast by default. */
  async function abort(key: DomainKey, report?: (message: string) => void): Promise<void> {
    const job = byKey.value[key];
    if (!job || aborting.value[key]) return;
    aborting.value[key] = true;
    const { connection, uuid } = parseDomainKey(key);
    try {
      // The outcome arrives as job.completed (status 'aborted', or 'completed' if it won the race).
      await host.call('domain.jobAbort', { domain: uuid }, { connection });
    } catch (err) {
      delete aborting.value[key];
      if (report) report(errorMessage(err));
      else useToastStore().failure(`Could not cancel the job of “${job.domain}”`, err);
    }
  }

  /**
   * Called with each fresh domain list: a job that was already running when this connection
   * opened shows no progress until asked about, so ask for the domains that are mid-save/restore.
   */
  function recover(list: readonly DomainSummary[], connection?: string): void {
    for (const domain of list) {
      if (!hasJobStep(domain) || byKey.value[domainKey(connection, domain.uuid)]) continue;
      host.call('domain.jobInfo', { domain: domain.uuid }, { connection }).then(
        ({ job }) => job && track(job, connection),
        // The job may have ended in between; its progress bar simply does not appear.
        () => undefined,
      );
    }
  }

  host.on('job.progress', ({ job }) => track(job));
  host.on('job.completed', ({ job }) => complete(job));
  host.onRemote('job.progress', ({ job }, connection) => track(job, connection));
  host.onRemote('job.completed', ({ job }, connection) => complete(job, connection));
  host.onState((state) => {
    if (state !== 'connected') return;
    // Progress from the previous connection is stale; running jobs are found again by recover().
    // A restarted host also numbers its jobs afresh.
    byKey.value = {};
    aborting.value = {};
    finished.length = 0;
  });

  return { byKey, aborting, track, abort, recover };
});
