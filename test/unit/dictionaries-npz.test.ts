/**
 * The .npz reader on files numpy wrote (tools/reference/dictionaries_reference.py):
 * f4/f2/f8, C and Fortran order, 0-d and empty arrays, .npy header versions
 * 1-3, stored and deflated entries, chosen rows; and the refusals (object
 * arrays, big-endian, integers, a truncated file, not a zip, a directory that
 * lies about a size), each in one line naming the file.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NpzFile } from '../../src/engine/dictionaries/npz';
import { FIXTURES, tempDir } from './helpers';

const DIR = path.join(FIXTURES, 'dictionaries', 'npz');
const EXPECTED = JSON.parse(fs.readFileSync(path.join(DIR, 'expected.json'), 'utf8')) as {
  a: number[];
  shape: number[];
  a_f2: number[];
};

function refuses(file: string, pattern: RegExp, read?: (npz: NpzFile) => unknown): void {
  assert.throws(
    () => {
      const npz = NpzFile.open(file);
      if (read) read(npz);
    },
    (err: Error) => {
      assert.equal(err.name, 'LoupeError');
      assert.match(err.message, pattern);
      assert.ok(err.message.includes(file), err.message);
      assert.ok(!err.message.includes('\n'));
      return true;
    },
  );
}

describe('.npz reader', () => {
  it('reads f4, f2 and f8 arrays, Fortran order as C order, 0-d and empty arrays', () => {
    const npz = NpzFile.open(path.join(DIR, 'plain.npz'));
    for (const name of ['f4', 'f8', 'fortran']) {
      assert.deepEqual(npz.info(name).shape, EXPECTED.shape, name);
      assert.deepEqual([...npz.readF32(name)], EXPECTED.a, name);
    }
    assert.equal(npz.info('fortran').fortranOrder, true);
    assert.deepEqual([...npz.readF32('f2')], EXPECTED.a_f2);
    assert.deepEqual([...npz.readF32('matrix_f')], EXPECTED.a.slice(0, 12));
    assert.deepEqual(npz.info('scalar').shape, []);
    assert.deepEqual([...npz.readF32('scalar')], [2.5]);
    assert.deepEqual(npz.info('empty').shape, [0, 3]);
    assert.equal(npz.readF32('empty').length, 0);
  });

  it('reads chosen rows, stored or deflated, C or Fortran order', () => {
    const row = (i: number): number[] => EXPECTED.a.slice(i * 12, (i + 1) * 12);
    for (const file of ['plain.npz', 'compressed.npz']) {
      const npz = NpzFile.open(path.join(DIR, file));
      for (const name of ['f4', 'fortran']) {
        assert.deepEqual(
          [...npz.readRowsF32(name, [1, 0, 1])],
          [...row(1), ...row(0), ...row(1)],
          `${file} ${name}`,
        );
      }
      assert.throws(() => npz.readRowsF32('f4', [2]), /has 2 rows; row 2 does not exist/);
    }
  });

  it('reads deflated entries and .npy header versions 1, 2 and 3', () => {
    const compressed = NpzFile.open(path.join(DIR, 'compressed.npz'));
    assert.deepEqual([...compressed.readF32('f4')], EXPECTED.a);
    assert.deepEqual([...compressed.readF32('fortran')], EXPECTED.a);
    const versions = NpzFile.open(path.join(DIR, 'versions.npz'));
    for (const name of ['v1', 'v2', 'v3']) assert.deepEqual([...versions.readF32(name)], EXPECTED.a, name);
  });

  it('refuses object arrays (pickles), big-endian and integer arrays', () => {
    refuses(
      path.join(DIR, 'object.npz'),
      /'obj\.npy': an object array, which numpy stores as a pickle; refused on purpose/,
    );
    refuses(path.join(DIR, 'bigendian.npz'), /dtype '>f4' \(big-endian/);
    refuses(path.join(DIR, 'ints.npz'), /dtype '<i8' .*is not a little-endian float/);
  });

  it('refuses a truncated file, a file that is not a zip, and a directory that lies about a size', () => {
    const dir = tempDir();
    const bytes = fs.readFileSync(path.join(DIR, 'plain.npz'));
    const cut = path.join(dir, 'cut.npz');
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 40));
    refuses(cut, /not a zip file|truncated|corrupt/);
    const text = path.join(dir, 'text.npz');
    fs.writeFileSync(text, 'W_enc = [1, 2, 3]\n');
    refuses(text, /not a zip file \(no end of central directory\)/);
    // Shrink the first entry's uncompressed size in the central directory by 4 bytes.
    const lying = Buffer.from(fs.readFileSync(path.join(DIR, 'compressed.npz')));
    const central = lying.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    lying.writeUInt32LE(lying.readUInt32LE(central + 24) - 4, central + 24);
    const liar = path.join(dir, 'liar.npz');
    fs.writeFileSync(liar, lying);
    refuses(liar, /bytes but its header's shape \[2, 3, 4\] of <f4 needs|does not inflate/, (npz) =>
      npz.readF32('f4'),
    );
  });
});
