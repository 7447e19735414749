/**
 * Each family-specific piece is pinned by the reference tests: turning it off
 * moves some value the engine is checked on by far more than the tolerance.
 *
 * The pins are written by tools/reference/make_fixtures.py into each fixture's
 * reference.json: the piece, the value it moves most (`output`, the logits or
 * a hook of case0), that value with the piece off (`tensor`), and how it was
 * turned off. Two kinds, and what each proves:
 * - `config`: a config.json field changed (attn_logit_softcapping or
 *   final_logit_softcapping set to null, sliding_window null, rope_scaling
 *   null, rope_local_base_freq equal to rope_theta, ...). The reference rebuilt
 *   from that config gives `tensor`: what an engine that ignored the field
 *   would compute. Here the engine is run on a copy of the fixture with the
 *   field so changed and must give `tensor` (so it reads the field), and
 *   `tensor` must differ from the fixture's value (so reference.test.ts, which
 *   checks the engine to 1e-4 on the real config, fails without the piece).
 * - `drop`: the piece turned off inside the reference (1 + w read as w, no
 *   embedding scale, no post-norms, no q/k norms, no window): no config field
 *   expresses these, so the pin is that the reference itself moves by far more
 *   than the tolerance, which reference.test.ts then holds the engine to.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HookedModel } from '../../src/engine/model';
import { SafetensorsFile, toInts } from '../../src/engine/safetensors';
import { Tensor } from '../../src/engine/tensor';
import { FIXTURES, maxAbsDiff, tempDir } from './helpers';

const TOLERANCE = 1e-4;
/** A pin must move its value by at least this many tolerances (or move a mask). */
const PIN_FACTOR = 10;

interface Pin {
  piece: string;
  case: string;
  output: string;
  tensor: string;
  config?: Record<string, unknown>;
  drop?: string;
}
interface PinnedIndex {
  model_type: string;
  pins?: Pin[];
}

/** Every piece the families need pinned, and the fixtures that must pin it. */
const REQUIRED: Record<string, readonly string[]> = {
  attn_softcap: ['gemma2'],
  final_softcap: ['gemma2'],
  window: ['mistral', 'phi3', 'gemma2', 'gemma3'],
  use_sliding_window: ['qwen2.5'],
  one_plus_w: ['gemma', 'gemma2', 'gemma3'],
  qk_norm: ['qwen3', 'gemma3'],
  rope_scaling: ['llama3', 'llama-linear', 'gemma3-linear'],
  local_base: ['gemma3', 'gemma3-linear'],
  embed_scale: ['gemma', 'gemma2'],
  post_norms: ['gemma2'],
  query_pre_attn_scalar: ['gemma2'],
  layer_types: ['gemma3'],
  sliding_window_pattern: ['gemma3-linear'],
  hidden_activation: ['gemma'],
};

const pinned = fs
  .readdirSync(FIXTURES)
  .filter((n) => fs.existsSync(path.join(FIXTURES, n, 'reference.json')))
  .map((name) => ({
    name,
    index: JSON.parse(fs.readFileSync(path.join(FIXTURES, name, 'reference.json'), 'utf8')) as PinnedIndex,
  }))
  .filter((f) => f.index.pins !== undefined);

/** Largest difference, or Infinity where finite and infinite entries (a mask) disagree. */
function moved(a: Float32Array, b: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i]) !== Number.isFinite(b[i])) return Infinity;
  return maxAbsDiff(a, b);
}

/** A copy of the fixture folder with some config.json fields replaced. */
function withConfig(dir: string, changes: Record<string, unknown>): string {
  const out = tempDir('loupe-pin-');
  for (const f of fs.readdirSync(dir)) fs.copyFileSync(path.join(dir, f), path.join(out, f));
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify({ ...config, ...changes }, null, 2));
  return out;
}

describe('family pieces pinned by the reference fixtures', function () {
  const cacheDir = tempDir('loupe-pin-cache-');

  it('pins every piece in the fixtures that must show it', () => {
    for (const [piece, fixtures] of Object.entries(REQUIRED)) {
      for (const name of fixtures) {
        const f = pinned.find((p) => p.name === name);
        assert.ok(f, `missing fixture ${name}; run tools/reference/make_fixtures.py`);
        assert.ok(
          f.index.pins!.some((p) => p.piece === piece),
          `${name} does not pin ${piece}`,
        );
      }
    }
  });

  for (const { name, index } of pinned) {
    describe(name, () => {
      const dir = path.join(FIXTURES, name);
      let ref: SafetensorsFile;
      const read = (key: string): Tensor => ({ dims: ref.info(key).shape, data: ref.readF32(key) });
      before(() => {
        ref = SafetensorsFile.open(path.join(dir, 'reference.safetensors'));
      });

      for (const pin of index.pins!) {
        const how = pin.config ? `config ${JSON.stringify(pin.config)}` : `dropped in the reference`;
        it(`${pin.piece} (${how}) moves ${pin.output} by more than ${PIN_FACTOR}× the tolerance`, () => {
          const off = read(pin.tensor);
          const on = read(`${pin.case}.${pin.output}`);
          assert.deepEqual(off.dims, on.dims);
          const d = moved(off.data, on.data);
          assert.ok(d > PIN_FACTOR * TOLERANCE, `${pin.piece}: ${pin.output} moves by only ${d}`);
        });

        if (pin.config) {
          const changes = pin.config;
          it(`${pin.piece}: the engine on that config computes what the reference does`, async () => {
            const copy = withConfig(dir, changes);
            const model = await HookedModel.open(copy, { cacheDir, threads: 1 });
            try {
              const key = `${pin.case}.input_ids`;
              const ids = toInts(ref.info(key).dtype, ref.readBytes(key), key);
              const fetch = pin.output === 'logits' ? [] : [pin.output];
              const [result] = await model.run([ids], { hooks: fetch });
              const got = pin.output === 'logits' ? result.logits : result.hooks.get(pin.output)!;
              const want = read(pin.tensor);
              assert.deepEqual(got.dims, want.dims);
              const d = maxAbsDiff(got.data, want.data);
              assert.ok(
                d <= TOLERANCE,
                `${pin.piece}: the engine is ${d} from the reference with ${JSON.stringify(changes)}`,
              );
            } finally {
              await model.dispose();
              fs.rmSync(copy, { recursive: true, force: true });
            }
          });
        }
      }
    });
  }
});
