// Long operations (save, restore, managed save…) per domain, kept live from job.progress and
// job.completed. libvirt runs at most one job per domain, so they are keyed by domain UUID.
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { DomainSummary, JobInfo } from '@shared/api';
import { hostConnection } from './api';
import { useToastStore } from './toasts';

/** How each operation reads in a sentence: "Saving…", "Could not save", "Saved". */
const OPERATION_WORDS: Record<JobInfo['operation'], { running: string; verb: string; done: string }> = {
  save: { running: 'Saving', verb: 'save', done: 'Saved' },
  managedsave: { running: 'Saving', verb: 'save', done: 'Saved' },
  restore: { running: 'Restoring', verb: 'restore', done: 'Restored' },
  dump: { running: 'Dumping', verb: 'dump', done: 'Dumped' },
  migrate: { running: 'Migrating', verb: 'migrate', done: 'Migrated' },
  upload: { running: 'Uploading', verb: 'upload', done: 'Uploaded' },
};

export function jobRunningLabel(job: JobInfo): string {
  return OPERATION_WORDS[job.operation].running;
}

/** Job ids remembered as finished, so a progress event that trails its completion is ignored. */
const FINISHED_MEMORY = 64;

/** The steps during which a domain has a job whose progress this window may have missed. */
function hasJobStep(domain: DomainSummary): boolean {
  return domain.step === 'saving' || domain.step === 'restoring';
}

export const useJobsStore = defineStore('jobs', () => {
  const host = hostConnection();
  const byUuid = ref<Record<string, JobInfo>>({});
  /** Domains whose job this window asked to abort and that have not finished yet. */
  const aborting = ref<Record<string, true>>({});
  const finished: number[] = [];

  function track(job: JobInfo): void {
    if (job.status !== 'running' || finished.includes(job.id)) return;
    byUuid.value[job.uuid] = job;
  }

  function complete(job: JobInfo): void {
    finished.push(job.id);
    if (finished.length > FINISHED_MEMORY) finished.shift();
    if (byUuid.value[job.uuid]?.id === job.id) delete byUuid.value[job.uuid];
    delete aborting.value[job.uuid];
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

  async function abort(uuid: string): Promise<void> {
    const job = byUuid.value[uuid];
    if (!job || aborting.value[uuid]) return;
    aborting.value[uuid] = true;
    try {
      // The outcome arrives as job.completed (status 'aborted', or 'completed' if it won the race).
      await host.call('domain.jobAbort', { domain: uuid });
    } catch (err) {
      delete aborting.value[uuid];
      useToastStore().failure(`Could not cancel the job of “${job.domain}”`, err);
    }
  }

  /**
   * Called with each fresh domain list: a job that was already running when this connection
   * opened shows no progress until asked about, so ask for the domains that are mid-save/restore.
   */
  function recover(list: readonly DomainSummary[]): void {
    for (const domain of list) {
      if (!hasJobStep(domain) || byUuid.value[domain.uuid]) continue;
      host.call('domain.jobInfo', { domain: domain.uuid }).then(
        ({ job }) => job && track(job),
        // The job may have ended in between; its progress bar simply does not appear.
        () => undefined,
      );
    }
  }

  host.on('job.progress', ({ job }) => track(job));
  host.on('job.completed', ({ job }) => complete(job));
  host.onState((state) => {
    if (state !== 'connected') return;
    // Progress from the previous connection is stale; running jobs are found again by recover().
    // A restarted host also numbers its jobs afresh.
    byUuid.value = {};
    aborting.value = {};
    finished.length = 0;
  });

  return { byUuid, aborting, track, abort, recover };
});
