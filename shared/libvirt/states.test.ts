// libvirt's domain states and reasons, as the API names them and virsh words them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DOMAIN_STATES, reasonLabel, stateLabel } from './states.js';

test("states are in virDomainState's order, so an index is libvirt's number for the state", () => {
  assert.equal(DOMAIN_STATES.length, 8);
  assert.equal(DOMAIN_STATES.indexOf('nostate'), 0);
  assert.equal(DOMAIN_STATES.indexOf('running'), 1);
  assert.equal(DOMAIN_STATES.indexOf('paused'), 3);
  assert.equal(DOMAIN_STATES.indexOf('shutoff'), 5);
  assert.equal(DOMAIN_STATES.indexOf('pmsuspended'), 7);
});

test('states read as virsh prints them', () => {
  assert.deepEqual(DOMAIN_STATES.map(stateLabel), [
    'no state',
    'running',
    'blocked',
    'paused',
    'in shutdown',
    'shut off',
    'crashed',
    'pmsuspended',
  ]);
});

test('reasons read as virsh prints them', () => {
  assert.equal(reasonLabel('ioerror'), 'I/O error');
  assert.equal(reasonLabel('starting-up'), 'starting up');
  assert.equal(reasonLabel('from snapshot'), 'from snapshot');
  assert.equal(reasonLabel('saved'), 'saved');
  assert.equal(reasonLabel('unknown'), 'unknown');
});
