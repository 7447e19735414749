/**
 * The bundled default model through the engine: its tokenizer reproduces the
 * training pipeline's token ids, and its held-out loss matches the loss the
 * training script reported (PyTorch, from the shipped weights) to 1e-3.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultModelDir } from '../../src/engine/defaultModel';
import { HookedModel } from '../../src/engine/model';
import { tempDir } from './helpers';

interface HeldoutSample {
  n_ctx: number;
  bos_id: number;
  loss: number;
  predictions: number;
  items: { path: string; text: string; ids: number[] }[];
}

/** Mean next-token cross-entropy of logits [1, n, V] against the ids that follow. */
function crossEntropySum(logits: Float32Array, ids: readonly number[], vocab: number): number {
  let total = 0;
  for (let t = 0; t + 1 < ids.length; t++) {
    const row = logits.subarray(t * vocab, (t + 1) * vocab);
    let max = -Infinity;
    for (const v of row) if (v > max) max = v;
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    total += Math.log(sum) + max - row[ids[t + 1]];
  }
  return total;
}

describe('the bundled default model', function () {
  let model: HookedModel;
  let sample: HeldoutSample;
  before(async () => {
    const dir = defaultModelDir();
    sample = JSON.parse(fs.readFileSync(path.join(dir, 'heldout-sample.json'), 'utf8')) as HeldoutSample;
    model = await HookedModel.open(dir, { cacheDir: tempDir('loupe-default-') });
  });
  after(async () => model?.dispose());

  it('is a GPT-2 checkpoint the engine opens like any other', () => {
    assert.equal(model.spec.family, 'gpt2');
    assert.ok(model.tokenizer, 'ships its tokenizer');
  });

  it('tokenizes the held-out texts exactly as the training pipeline did', async () => {
    for (const item of sample.items) {
      const tokens = await model.tokenize(item.text);
      assert.deepEqual(tokens.map((t) => t.id).slice(0, sample.n_ctx), item.ids, `token ids of ${item.path}`);
    }
  });

  it('reproduces the training script held-out loss to 1e-3', async () => {
    let total = 0;
    let count = 0;
    for (let i = 0; i < sample.items.length; i += 4) {
      const batch = sample.items.slice(i, i + 4).map((it) => it.ids);
      const results = await model.run(batch);
      results.forEach((r, j) => {
        total += crossEntropySum(r.logits.data, batch[j], model.spec.dVocab);
        count += batch[j].length - 1;
      });
    }
    assert.equal(count, sample.predictions);
    const loss = total / count;
    assert.ok(Math.abs(loss - sample.loss) < 1e-3, `engine ${loss} vs training script ${sample.loss}`);
  });
});
