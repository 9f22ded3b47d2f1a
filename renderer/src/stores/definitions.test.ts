import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiCallError } from '@shared/client';
import { fakeHostPerTest, summary } from '../testing/fakeHost';
import { useDefinitionsStore } from './definitions';
import { useDomainsStore } from './domains';

const GUEST = summary({ uuid: 'g1', name: 'guest', generation: 4 });

describe('definitions store', () => {
  const fixture = fakeHostPerTest([GUEST]);

  it('reads the definition with its secrets, as the editor saves it back', async () => {
    const definitions = useDefinitionsStore();
    fixture.host.answer('domain.xml', () => ({ xml: '<domain/>', generation: 4 }));
    assert.deepEqual(await definitions.xml('g1', 'inactive'), { xml: '<domain/>', generation: 4 });
    await definitions.xml('g1', 'live');
    assert.deepEqual(fixture.host.sent('domain.xml'), [
      { domain: 'g1', inactive: true, secure: true },
      { domain: 'g1', inactive: false, secure: true },
    ]);
  });

  it('defines from the generation the edit started at and applies the answered summary at once', async () => {
    const definitions = useDefinitionsStore();
    const domains = useDomainsStore();
    fixture.host.answer('domain.define', () => ({ domain: { ...GUEST, generation: 5, title: 'edited' }, warnings: [] }));
    await definitions.define('<domain><title>edited</title></domain>', 4);
    assert.deepEqual(fixture.host.sent('domain.define'), [{ xml: '<domain><title>edited</title></domain>', expectGeneration: 4 }]);
    assert.equal(domains.byUuid.g1.generation, 5);
    assert.equal(domains.byUuid.g1.title, 'edited');
  });

  it('hands a conflict to the caller as the host worded it', async () => {
    const definitions = useDefinitionsStore();
    fixture.host.answer('domain.define', () => {
      throw { code: 'DEFINITION_CHANGED', message: 'the definition changed (generation 5, expected 4)' };
    });
    await assert.rejects(definitions.define('<domain/>', 4), (err) => err instanceof ApiCallError && err.code === 'DEFINITION_CHANGED');
    assert.equal(useDomainsStore().byUuid.g1.generation, 4);
  });

  it('answers the target an attached disk got, and applies the new summary', async () => {
    const definitions = useDefinitionsStore();
    fixture.host.answer('domain.attachDisk', () => ({ domain: { ...GUEST, generation: 6 }, target: 'hdb' }));
    assert.equal(await definitions.attachDisk({ domain: 'g1', source: '/pool/data.img', config: true }), 'hdb');
    assert.equal(useDomainsStore().byUuid.g1.generation, 6);
  });
});
