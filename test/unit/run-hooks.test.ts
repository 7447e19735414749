/**
 * Running only as far as the hooks need (no logits): the same values as a
 * full run, for a hook in the first block, the embeddings and the final norm.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HookedModel } from '../../src/engine/model';
import { FIXTURES, maxAbsDiff, tempDir } from './helpers';

describe('runHooksPadded', () => {
  let dir: string;
  let model: HookedModel;
  before(async () => {
    dir = tempDir();
    model = await HookedModel.open(path.join(FIXTURES, 'gpt2'), { threads: 1, cacheDir: dir });
  });
  after(async () => {
    await model.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const hooks of [
    ['blocks.0.hook_resid_post'],
    ['hook_embed'],
    ['ln_final.hook_normalized', 'blocks.1.attn.hook_pattern'],
  ]) {
    it(`matches a full run at ${hooks.join(', ')}`, async () => {
      const batch = [
        [296, 5, 17, 42, 9],
        [296, 7, 7],
      ];
      const full = await model.runPadded(batch, { hooks });
      const early = await model.runHooksPadded(batch, hooks);
      assert.deepEqual(early.lengths, full.lengths);
      for (const h of hooks) {
        assert.deepEqual(early.hooks.get(h)!.dims, full.hooks.get(h)!.dims);
        assert.ok(maxAbsDiff(early.hooks.get(h)!.data, full.hooks.get(h)!.data) < 1e-6, h);
      }
    });
  }

  it('needs a hook to return', async () => {
    await assert.rejects(model.runHooksPadded([[1]], []), /at least one hook/);
  });
});
