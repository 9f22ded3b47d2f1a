// Which actions the UI offers in which state (what libvirt would accept), and how states read.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DomainSummary } from '@shared/api';
import { DOMAIN_STATES, type DomainState } from '@shared/libvirt/states';
import {
  domainActions,
  hasConsole,
  isActive,
  NO_ACTIONS,
  ON_HOST_STOP_CHOICES,
  stateText,
  stateWithReason,
  stepLabel,
  type DomainActions,
} from './domainState';

function summary(over: Partial<DomainSummary> = {}): DomainSummary {
  return {
    uuid: '7c1e5f0a-3b9d-4e62-8f14-2a6d0c9b5e31',
    name: 'debian12',
    state: 'shutoff',
    reason: 'unknown',
    step: null,
    persistent: true,
    engine: 'v86',
    memoryKiB: 2097152,
    currentMemoryKiB: 2097152,
    vcpus: 2,
    cpuPercent: 0,
    autostart: false,
    onHostStop: 'shutdown',
    managedSave: false,
    generation: 1,
    ...over,
  };
}

/** The names of the actions offered, for compact comparisons. */
function offered(actions: DomainActions): string[] {
  return Object.entries(actions)
    .filter(([, on]) => on)
    .map(([name]) => name)
    .sort();
}

describe('states', () => {
  test('only shut off has no engine behind it', () => {
    assert.deepEqual(
      DOMAIN_STATES.filter((s) => !isActive(s)),
      ['shutoff'],
    );
  });

  test('a console is there while the guest runs, is paused or shuts down', () => {
    assert.deepEqual(
      DOMAIN_STATES.filter(hasConsole),
      ['running', 'blocked', 'paused', 'shutdown'],
    );
  });
});

describe('actions', () => {
  const cases: Array<[string, Partial<DomainSummary>, string[]]> = [
    ['shut off, persistent', { state: 'shutoff' }, ['start', 'undefine']],
    ['shut off with a managed save', { state: 'shutoff', managedSave: true }, ['discardSave', 'start', 'undefine']],
    ['running', { state: 'running' }, ['destroy', 'dump', 'managedSave', 'migrate', 'reboot', 'reset', 'shutdown', 'suspend']],
    ['blocked (running, waiting)', { state: 'blocked' }, ['destroy', 'dump', 'managedSave', 'migrate', 'reboot', 'reset', 'shutdown', 'suspend']],
    ['running, transient: no managed save, nothing to restore into', { state: 'running', persistent: false }, ['destroy', 'dump', 'migrate', 'reboot', 'reset', 'shutdown', 'suspend']],
    ['paused', { state: 'paused' }, ['destroy', 'dump', 'managedSave', 'migrate', 'reset', 'resume']],
    ['in shutdown', { state: 'shutdown' }, ['destroy', 'reset']],
    ['crashed: it can be dumped', { state: 'crashed' }, ['destroy', 'dump', 'reset']],
    ['shutting down: it can still be forced off', { state: 'running', step: 'shutting-down' }, ['destroy']],
    ['starting', { state: 'shutoff', step: 'starting' }, []],
    ['saving', { state: 'running', step: 'saving' }, []],
  ];
  for (const [what, over, expected] of cases) {
    test(what, () => {
      assert.deepEqual(offered(domainActions(summary(over), false)), expected);
    });
  }

  test('nothing while a request of this window is in flight', () => {
    assert.equal(domainActions(summary({ state: 'running' }), true), NO_ACTIONS);
  });
});

describe('wording', () => {
  test('steps', () => {
    assert.equal(stepLabel('starting'), 'starting…');
    assert.equal(stepLabel('shutting-down'), 'shutting down…');
    assert.equal(stepLabel('saving'), 'saving…');
    assert.equal(stepLabel('restoring'), 'restoring…');
  });

  test("states with their reason, as virsh domstate --reason prints them; an unknown reason is left out", () => {
    const read = (state: DomainState, reason: DomainSummary['reason']): string => stateWithReason({ state, reason });
    assert.equal(read('shutoff', 'saved'), 'shut off (saved)');
    assert.equal(read('shutoff', 'unknown'), 'shut off');
    assert.equal(read('running', 'from snapshot'), 'running (from snapshot)');
    assert.equal(read('paused', 'ioerror'), 'paused (I/O error)');
    assert.equal(read('paused', 'starting-up'), 'paused (starting up)');
    assert.equal(read('shutdown', 'unknown'), 'in shutdown');
    assert.equal(read('crashed', 'panicked'), 'crashed (panicked)');
    assert.equal(read('shutoff', 'crashed'), 'shut off (crashed)');
  });

  test('the step in flight wins over the state', () => {
    assert.equal(stateText(summary({ state: 'running', reason: 'booted' })), 'running (booted)');
    assert.equal(stateText(summary({ state: 'running', reason: 'booted', step: 'shutting-down' })), 'shutting down…');
  });

  test('host-stop choices are offered in a fixed order', () => {
    assert.deepEqual(ON_HOST_STOP_CHOICES, ['shutdown', 'save', 'keep']);
  });
});
