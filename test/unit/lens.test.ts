/**
 * The lenses against the independent PyTorch reference (tools/reference/lens_reference.py):
 * logit lens, tuned lens and both attention-free projections, every layer and
 * position of tiny checkpoints of three families, to 1e-4 in probability,
 * log-probability of the top tokens, rank of the next token and entropy.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { LoupeError } from '../../src/engine/errors';
import { LensGrid, ModelLenses } from '../../src/engine/lens/lenses';
import { parseIndexList, positionsInRange } from '../../src/engine/lens/positions';
import { TunedLens } from '../../src/engine/lens/tunedLens';
import { HookedModel } from '../../src/engine/model';
import { SafetensorsFile } from '../../src/engine/safetensors';
import { FIXTURES, tempDir } from './helpers';
import { LENS_FIXTURES, LENS_MODELS, lensReference } from './lensFixtures';

const TOLERANCE = 1e-4;

/** Every cell of a grid against the reference's full log-probabilities [L+1, T, V]. */
function checkGrid(grid: LensGrid, expected: Float32Array, V: number, ids: number[], label: string): void {
  const T = ids.length;
  for (const row of grid.cells) {
    for (const cell of row) {
      const want = expected.subarray(
        (cell.layer * T + cell.position) * V,
        (cell.layer * T + cell.position + 1) * V,
      );
      const where = `${label} layer ${cell.layer} position ${cell.position}`;
      const sorted = Float64Array.from(want).sort().reverse();
      cell.top.forEach((t, i) => {
        assert.ok(
          Math.abs(Math.log(t.prob) - want[t.id]) <= TOLERANCE,
          `${where}: top ${i} (${t.id}) log-prob`,
        );
        assert.ok(
          Math.abs(Math.log(t.prob) - sorted[i]) <= TOLERANCE,
          `${where}: top ${i} is not the ${i}th largest`,
        );
      });
      let entropy = 0;
      for (let v = 0; v < V; v++) entropy -= Math.exp(want[v]) * want[v];
      assert.ok(
        Math.abs(cell.entropy - entropy) <= TOLERANCE,
        `${where}: entropy ${cell.entropy} vs ${entropy}`,
      );
      if (cell.position + 1 < T) {
        const next = ids[cell.position + 1];
        assert.ok(cell.target !== null);
        assert.equal(cell.target.id, next);
        assert.ok(
          Math.abs(cell.target.prob - Math.exp(want[next])) <= TOLERANCE,
          `${where}: next-token prob`,
        );
        // Rank 1 + the number of more likely tokens; tokens within the tolerance may fall either side.
        const surely = 1 + want.filter((x) => x > want[next] + TOLERANCE).length;
        const maybe = 1 + want.filter((x) => x > want[next] - TOLERANCE).length - 1;
        assert.ok(
          cell.target.rank >= surely && cell.target.rank <= maybe,
          `${where}: rank ${cell.target.rank}`,
        );
      } else {
        assert.equal(cell.target, null);
      }
    }
  }
}

describe('lenses vs the PyTorch reference', function () {
  const cacheDir = tempDir('loupe-lens-cache-');

  for (const name of LENS_MODELS) {
    describe(name, () => {
      let model: HookedModel;
      let lenses: ModelLenses;
      let ref: SafetensorsFile;
      let ids: number[];
      let V: number;
      before(async () => {
        model = await HookedModel.open(path.join(FIXTURES, name), { cacheDir, threads: 1 });
        lenses = new ModelLenses(model, { threads: 1 });
        ({ ref, ids } = lensReference(name));
        V = model.spec.dVocab;
      });
      after(async () => {
        await lenses?.dispose();
        await model?.dispose();
      });

      it('logit lens: every layer and position', async () => {
        const grid = await lenses.logit(ids, { topK: 5 });
        assert.deepEqual(grid.layers, [0, 1, 2]);
        assert.equal(grid.positions.length, ids.length);
        checkGrid(grid, ref.readF32('logit.logprobs'), V, ids, 'logit');
      });

      it('tuned lens, loaded from its folder', async () => {
        const lens = TunedLens.load(path.join(LENS_FIXTURES, name, 'tuned'));
        const grid = await lenses.tuned(ids, lens, { topK: 5 });
        checkGrid(grid, ref.readF32('tuned.logprobs'), V, ids, 'tuned');
      });

      for (const variant of ['self', 'skip'] as const) {
        it(`attention-free projection, variant ${variant}`, async () => {
          const grid = await lenses.attentionFree(ids, variant, { topK: 5 });
          checkGrid(grid, ref.readF32(`free_${variant}.logprobs`), V, ids, `free ${variant}`);
        });
      }

      it('chosen layers and positions give the same cells as the full grid', async () => {
        const full = await lenses.logit(ids, { topK: 3 });
        const some = await lenses.logit(ids, { layers: [2, 0], positions: [4, 1], topK: 3 });
        assert.deepEqual(some.layers, [0, 2]);
        assert.deepEqual(some.positions, [1, 4]);
        assert.deepEqual(some.cells[1][1], full.cells[2][4]);
      });
    });
  }

  describe('bad requests', () => {
    let model: HookedModel;
    let lenses: ModelLenses;
    let ids: number[];
    before(async () => {
      model = await HookedModel.open(path.join(FIXTURES, 'gpt2'), { cacheDir, threads: 1 });
      lenses = new ModelLenses(model, { threads: 1 });
      ({ ids } = lensReference('gpt2'));
    });
    after(async () => {
      await lenses?.dispose();
      await model?.dispose();
    });

    it('refuses a layer or position out of range, in one line that says the range', async () => {
      await assert.rejects(lenses.logit(ids, { layers: [3] }), (e: Error) => {
        assert.ok(e instanceof LoupeError);
        assert.match(e.message, /layer 3 is out of range: lens layers are 0\.\.2/);
        return true;
      });
      await assert.rejects(lenses.attentionFree(ids, 'self', { positions: [ids.length] }), (e: Error) => {
        assert.ok(e instanceof LoupeError);
        assert.match(
          e.message,
          new RegExp(`position ${ids.length} is out of range: the text has ${ids.length} tokens`),
        );
        return true;
      });
    });

    it('parses index lists and character ranges', () => {
      assert.deepEqual(parseIndexList('0,2-4', '--layers'), [0, 2, 3, 4]);
      assert.throws(() => parseIndexList('a', '--layers'), /--layers takes numbers and ranges/);
      const tokens = [
        { start: 0, end: 0 },
        { start: 0, end: 3 },
        { start: 3, end: 5 },
        { start: 5, end: 9 },
      ];
      assert.deepEqual(positionsInRange(tokens, 2, 6), [1, 2, 3]);
      assert.deepEqual(positionsInRange(tokens, 3, 3), [2]);
      assert.throws(() => positionsInRange(tokens, 20, 30), /no token overlaps/);
    });
  });
});
