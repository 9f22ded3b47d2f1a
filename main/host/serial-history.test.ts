import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SerialHistory } from './serial-history.js';

test('keeps the newest bytes, trimmed to the byte: a large hand-over keeps its tail when more output comes', () => {
  const h = new SerialHistory(8);
  h.push(Buffer.from('0123456789abcdef'));
  assert.equal(h.contents().toString(), '89abcdef');
  h.push(Buffer.from('XY'));
  assert.equal(h.contents().toString(), 'abcdefXY');
  h.push(Buffer.from('12345678'));
  assert.equal(h.contents().toString(), '12345678');
  h.push(Buffer.alloc(0));
  assert.equal(h.contents().toString(), '12345678');
  h.clear();
  assert.equal(h.contents().length, 0);
});
