/**
 * Every malformed input gets one line that names the file and the problem;
 * nothing crashes.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openCheckpoint } from '../../src/engine/checkpoint';
import { compileCheckpoint } from '../../src/engine/compile';
import { LoupeError } from '../../src/engine/errors';
import { HookedModel } from '../../src/engine/model';
import { SafetensorsFile, writeSafetensors } from '../../src/engine/safetensors';
import { tempDir, writeTinyGpt2 } from './helpers';

function expectLoupeError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof LoupeError, `expected a LoupeError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), 'the message is one line');
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

describe('malformed checkpoints', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
    writeTinyGpt2(dir);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const weights = (): string => path.join(dir, 'model.safetensors');

  it('opens the intact checkpoint', () => {
    const ckpt = openCheckpoint(dir);
    assert.equal(ckpt.spec.nLayers, 2);
    assert.equal(ckpt.spec.dModel, 16);
  });

  it('refuses a truncated safetensors file', () => {
    const buf = fs.readFileSync(weights());
    fs.writeFileSync(weights(), buf.subarray(0, buf.length - 100));
    expectLoupeError(() => openCheckpoint(dir), /model\.safetensors/, /truncated/);
  });

  it('refuses a file cut inside its header', () => {
    fs.writeFileSync(weights(), fs.readFileSync(weights()).subarray(0, 50));
    expectLoupeError(() => openCheckpoint(dir), /model\.safetensors/, /header length/);
  });

  it('refuses an empty file', () => {
    fs.writeFileSync(weights(), '');
    expectLoupeError(() => openCheckpoint(dir), /model\.safetensors/, /empty/);
  });

  it('refuses a header that is not JSON', () => {
    const buf = fs.readFileSync(weights());
    buf.write('}}}}', 8);
    fs.writeFileSync(weights(), buf);
    expectLoupeError(() => openCheckpoint(dir), /model\.safetensors/, /not valid JSON/);
  });

  it('refuses a header whose offsets run past the data', () => {
    const file = path.join(dir, 'lie.safetensors');
    const header = Buffer.from(JSON.stringify({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    fs.writeFileSync(file, Buffer.concat([len, header, Buffer.alloc(8)]));
    expectLoupeError(() => SafetensorsFile.open(file), /lie\.safetensors/, /'a'/, /truncated/);
  });

  it('refuses a header whose shape disagrees with its offsets', () => {
    const file = path.join(dir, 'shape.safetensors');
    const header = Buffer.from(JSON.stringify({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    fs.writeFileSync(file, Buffer.concat([len, header, Buffer.alloc(16)]));
    expectLoupeError(() => SafetensorsFile.open(file), /shape\.safetensors/, /needs 12 bytes/);
  });

  it('refuses overlapping tensors', () => {
    const file = path.join(dir, 'overlap.safetensors');
    const header = Buffer.from(
      JSON.stringify({
        a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
        b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] },
      }),
    );
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    fs.writeFileSync(file, Buffer.concat([len, header, Buffer.alloc(24)]));
    expectLoupeError(() => SafetensorsFile.open(file), /overlap/);
  });

  it('names a missing tensor', () => {
    const tiny = writeTinyGpt2(dir);
    tiny.tensors.delete('h.1.mlp.c_fc.weight');
    writeSafetensors(weights(), tiny.tensors);
    expectLoupeError(() => compileCheckpoint(openCheckpoint(dir), tempDir()), /h\.1\.mlp\.c_fc\.weight/);
  });

  it('reports a config that does not match the weights', () => {
    writeTinyGpt2(dir, 1, { n_inner: 80 });
    expectLoupeError(
      () => compileCheckpoint(openCheckpoint(dir), tempDir()),
      /c_fc\.weight/,
      /\[16, 64\]/,
      /\[16, 80\]/,
      /do not match/,
    );
  });

  it('takes bos_token_id 0 (a valid id) and refuses a negative one', () => {
    writeTinyGpt2(dir, 1, { bos_token_id: 0 });
    assert.equal(openCheckpoint(dir).spec.bosTokenId, 0);
    writeTinyGpt2(dir, 1, { bos_token_id: -1 });
    expectLoupeError(() => openCheckpoint(dir), /config\.json/, /bos_token_id/, /token id/);
  });

  it('refuses an unknown model_type and lists the supported ones', () => {
    writeTinyGpt2(dir, 1, { model_type: 'mamba' });
    expectLoupeError(() => openCheckpoint(dir), /config\.json/, /mamba/, /gpt2/, /llama/);
  });

  it('refuses a config that is not JSON', () => {
    fs.writeFileSync(path.join(dir, 'config.json'), '{ nope');
    expectLoupeError(() => openCheckpoint(dir), /config\.json/, /not valid JSON/);
  });

  it('refuses pickled weights on purpose and says how to convert', () => {
    fs.rmSync(weights());
    fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), 'not really a pickle');
    expectLoupeError(
      () => openCheckpoint(dir),
      /pytorch_model\.bin/,
      /pickle/,
      /arbitrary code/,
      /safetensors/,
    );
  });

  it('refuses a folder without config.json', () => {
    fs.rmSync(path.join(dir, 'config.json'));
    expectLoupeError(() => openCheckpoint(dir), /no config\.json/);
  });

  it('refuses weights with NaN', () => {
    const tiny = writeTinyGpt2(dir);
    (tiny.tensors.get('h.0.ln_1.weight')!.data as Float32Array)[3] = NaN;
    writeSafetensors(weights(), tiny.tensors);
    expectLoupeError(() => compileCheckpoint(openCheckpoint(dir), tempDir()), /h?\.?0?.*non-finite/);
  });

  it('refuses token ids outside the vocabulary and too-long inputs', async () => {
    const model = await HookedModel.open(dir, { cacheDir: tempDir(), threads: 1 });
    try {
      await assert.rejects(model.run([[1, 2, 999]]), /outside the vocabulary/);
      await assert.rejects(
        model.run([Array.from({ length: 33 }, () => 1)]),
        /exceed the model's context of 32/,
      );
      await assert.rejects(model.run([[1, 2]], { hooks: ['blocks.0.hook_resid_prex'] }), /unknown hook/);
    } finally {
      await model.dispose();
    }
  });
});

describe('safetensors dtypes', () => {
  it('widens f16 and bf16 to f32 exactly', () => {
    const dir = tempDir();
    const file = path.join(dir, 'dtypes.safetensors');
    // 1.0, -2.0, 0.5, 65504 (max half), 2^-24 (smallest subnormal)
    const half = new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001]);
    // bf16: 1.0, -2.0, 3.140625
    const bf = new Uint16Array([0x3f80, 0xc000, 0x4049]);
    const header = Buffer.from(
      JSON.stringify({
        h: { dtype: 'F16', shape: [5], data_offsets: [0, 10] },
        b: { dtype: 'BF16', shape: [3], data_offsets: [10, 16] },
      }),
    );
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    const data = Buffer.concat([Buffer.from(half.buffer), Buffer.from(bf.buffer)]);
    fs.writeFileSync(file, Buffer.concat([len, header, data]));
    const st = SafetensorsFile.open(file);
    assert.deepEqual(Array.from(st.readF32('h')), [1, -2, 0.5, 65504, 2 ** -24]);
    assert.deepEqual(Array.from(st.readF32('b')), [1, -2, 3.140625]);
  });
});
