/**
 * HookedModel.runAt: the logits of one position per text, [B, 1, d_vocab],
 * are exactly those rows of the full [B, T, d_vocab] run, in a padded batch
 * of different lengths, with edits, and soft-capped where the model caps them.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { HookedModel } from '../../src/engine/model';
import { LoupeError } from '../../src/engine/errors';
import { FIXTURES, maxAbsDiff, tempDir } from './helpers';

describe('logits at one position per text (runAt)', () => {
  const cacheDir = tempDir('loupe-rows-cache-');
  for (const fixture of ['llama-gqa', 'gemma2']) {
    it(`${fixture}: equals the full run's rows`, async () => {
      const model = await HookedModel.open(path.join(FIXTURES, fixture), { cacheDir, threads: 1 });
      try {
        const batch = [
          [2, 10, 20, 30, 40, 50, 60],
          [2, 11, 21],
          [2, 12, 22, 32, 42],
        ];
        const positions = [6, 0, 3];
        const V = model.spec.dVocab;
        const d = model.spec.dModel;
        const add = new Float32Array(d).map((_, j) => 0.01 * (j % 7));
        const edits = [{ hook: 'blocks.0.hook_resid_post', add: { dims: [d], data: add } }];
        const full = await model.runPadded(batch, { edits });
        const at = await model.runAt(batch, positions, { edits });
        assert.deepEqual(at.logits.dims, [3, 1, V]);
        const T = full.logits.dims[1];
        positions.forEach((p, b) => {
          const want = full.logits.data.subarray((b * T + p) * V, (b * T + p + 1) * V);
          const got = at.logits.data.subarray(b * V, (b + 1) * V);
          assert.ok(maxAbsDiff(got, want) < 1e-5, `text ${b} position ${p}`);
        });
        await assert.rejects(model.runAt(batch, [7, 0, 0]), LoupeError);
      } finally {
        await model.dispose();
      }
    });
  }
});
