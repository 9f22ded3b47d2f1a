// libvirt's scaled integers: domain XML sizes in KiB, virsh's size arguments, virsh's printed sizes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseCapacity, prettyCapacity, ScaledValueError, scaledToKiB, unitBytes } from './units.js';

const MiB = 1024 * 1024;

describe('unit names', () => {
  test('binary units are powers of 1024, KB-style ones powers of 1000, any case', () => {
    assert.equal(unitBytes('b'), 1n);
    assert.equal(unitBytes('Bytes'), 1n);
    assert.equal(unitBytes('K'), 1024n);
    assert.equal(unitBytes('kib'), 1024n);
    assert.equal(unitBytes('KB'), 1000n);
    assert.equal(unitBytes('MiB'), 1024n ** 2n);
    assert.equal(unitBytes('gb'), 1000n ** 3n);
    assert.equal(unitBytes('E'), 1024n ** 6n);
  });

  test('anything else is not a unit', () => {
    for (const unit of ['', 'x', 'XB', 'kibi', 'MiBs', 'bb', 'bib', 'Z']) assert.equal(unitBytes(unit), undefined, unit);
  });
});

describe('domain XML sizes in KiB', () => {
  const cases: Array<[string, string | undefined, number]> = [
    ['1048576', undefined, 1048576],
    ['1048576', 'KiB', 1048576],
    ['1048576', 'k', 1048576],
    ['2048000', 'KB', 2000000],
    ['512', 'MiB', 524288],
    ['512', 'M', 524288],
    ['512', 'MB', 500000],
    ['2', 'GiB', 2097152],
    ['2', 'G', 2097152],
    ['2', 'GB', 1953125],
    ['1', 'TiB', 1073741824],
    ['1', 'T', 1073741824],
    ['1', 'TB', 976562500],
    ['1073741824', 'b', 1048576],
    ['1073741824', 'bytes', 1048576],
    ['1025', 'bytes', 2],
    ['4', 'mib', 4096],
    [' 64 ', 'MiB', 65536],
  ];
  for (const [value, unit, kib] of cases) {
    test(`${value.trim()} ${unit ?? '(no unit)'} = ${kib} KiB`, () => {
      assert.equal(scaledToKiB(value, unit), kib);
    });
  }

  test('refuses what libvirt refuses, saying why', () => {
    const refused: Array<[string, string | undefined, string]> = [
      ['abc', 'KiB', "value 'abc' is not a number"],
      ['1.5', 'GiB', "value '1.5' is not a number"],
      ['-1', undefined, "value '-1' is not a number"],
      ['512', 'XB', "unit 'XB' is not a known unit"],
      ['512', '', "unit '' is not a known unit"],
      ['16', 'EiB', "value '16 EiB' is too large"],
    ];
    for (const [value, unit, message] of refused) {
      assert.throws(() => scaledToKiB(value, unit), (error: unknown) => error instanceof ScaledValueError && error.message === message, `${value} ${unit}`);
    }
  });
});

describe("virsh's size arguments", () => {
  test('bytes, binary suffixes, KB-style decimal ones, fractions', () => {
    assert.equal(parseCapacity('4096'), 4096);
    assert.equal(parseCapacity('512K'), 512 * 1024);
    assert.equal(parseCapacity('10M'), 10 * MiB);
    assert.equal(parseCapacity('2G'), 2 * 1024 * MiB);
    assert.equal(parseCapacity('2GiB'), 2 * 1024 * MiB);
    assert.equal(parseCapacity(' 2 GiB '), 2 * 1024 * MiB);
    assert.equal(parseCapacity('1.5g'), 1.5 * 1024 * MiB);
    assert.equal(parseCapacity('1MB'), 1_000_000);
    assert.equal(parseCapacity('3b'), 3);
    assert.equal(parseCapacity('3bytes'), 3);
  });

  test('refuses the rest, saying why', () => {
    const refused: Array<[string, RegExp]> = [
      ['', /^invalid capacity '': expected a number of bytes/],
      ['ten', /^invalid capacity 'ten': expected a number of bytes/],
      ['-5M', /^invalid capacity '-5M': expected a number of bytes/],
      ['10Q', /^invalid capacity '10Q': unknown suffix 'Q'/],
      ['10MiBs', /^invalid capacity '10MiBs': unknown suffix 'MiBs'/],
      ['0', /^invalid capacity '0': out of range$/],
      ['0.1', /^invalid capacity '0.1': out of range$/],
      ['8E', /^invalid capacity '8E': out of range$/],
    ];
    for (const [text, message] of refused) {
      assert.throws(() => parseCapacity(text), (error: unknown) => error instanceof ScaledValueError && message.test(error.message), text);
    }
  });
});

describe("virsh's printed sizes", () => {
  test('two decimals in the largest binary unit below the value', () => {
    assert.equal(prettyCapacity(0), '0.00 B');
    assert.equal(prettyCapacity(1023), '1023.00 B');
    assert.equal(prettyCapacity(1024), '1.00 KiB');
    assert.equal(prettyCapacity(1536 * 1024), '1.50 MiB');
    assert.equal(prettyCapacity(10 * 1024 * MiB), '10.00 GiB');
    assert.equal(prettyCapacity(2 ** 60 * 3), '3.00 EiB');
  });

  test('what virsh prints reads back as about the same size', () => {
    const bytes = 123_456_789;
    const [value, unit] = prettyCapacity(bytes).split(' ');
    assert.ok(Math.abs(parseCapacity(`${value}${unit}`) - bytes) < 0.01 * MiB);
  });
});
