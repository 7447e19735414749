/**
 * Heads: attention patterns, direct logit attribution (per head, per MLP, the
 * embeddings, biases; a logit and a logit difference) and TextSpan's chosen
 * directions, against the PyTorch reference on tiny checkpoints of three
 * families; TextSpan on a constructed case whose answer is known; the cache;
 * bad tokens.
 */
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { LoupeError } from '../../src/engine/errors';
import { attentionPatterns, attentionRow } from '../../src/engine/lens/attentionPatterns';
import { directLogitAttribution } from '../../src/engine/lens/directLogitAttribution';
import { headTextDirections } from '../../src/engine/lens/headTextDirections';
import { greedyDirections, headBasis } from '../../src/engine/lens/textSpan';
import { resolveToken } from '../../src/engine/lens/tokens';
import { HookedModel } from '../../src/engine/model';
import { toInts } from '../../src/engine/safetensors';
import { FIXTURES, maxAbsDiff, seededRandom, tempDir } from './helpers';
import { LENS_MODELS, LensReference, lensReference } from './lensFixtures';

const TOLERANCE = 1e-4;

describe('heads vs the PyTorch reference', function () {
  const cacheDir = tempDir('loupe-heads-cache-');

  for (const name of LENS_MODELS) {
    describe(name, () => {
      let model: HookedModel;
      let ids: number[];
      let ref: LensReference['ref'];
      let index: LensReference['index'];
      before(async () => {
        model = await HookedModel.open(path.join(FIXTURES, name), { cacheDir, threads: 1 });
        ({ ref, ids, index } = lensReference(name));
      });
      after(async () => model?.dispose());

      it('direct logit attribution: each head, MLP, embedding and bias, adding up to the logit', async () => {
        for (const c of index.dla) {
          // The first case leaves the target out: the engine must pick the model's top prediction itself.
          const a = await directLogitAttribution(model, ids, {
            position: c.position,
            target: c.versus === null ? undefined : c.target,
            versus: c.versus,
          });
          assert.equal(a.target.id, c.target);
          assert.equal(a.versus?.id ?? null, c.versus);
          const near = (x: number, key: string): void => {
            const want = ref.readF32(`${c.name}.${key}`);
            assert.ok(Math.abs(x - want[0]) <= TOLERANCE, `${c.name} ${key}: ${x} vs ${want[0]}`);
          };
          assert.ok(
            maxAbsDiff(Float32Array.from(a.heads.flat()), ref.readF32(`${c.name}.heads`)) <= TOLERANCE,
          );
          assert.ok(maxAbsDiff(Float32Array.from(a.mlp), ref.readF32(`${c.name}.mlp`)) <= TOLERANCE);
          assert.ok(
            maxAbsDiff(Float32Array.from(a.attnBias), ref.readF32(`${c.name}.attn_bias`)) <= TOLERANCE,
          );
          near(a.embed, 'embed');
          near(a.constant, 'constant');
          near(a.logit, 'logit');
          near(a.total, 'logit');
          if (model.spec.positional === 'learned') near(a.posEmbed!, 'pos_embed');
          else assert.equal(a.posEmbed, null);
        }
      });

      it('attention patterns: rows of the causal pattern that sum to 1', async () => {
        const [layer1] = await attentionPatterns(model, ids, [1]);
        const T = ids.length;
        assert.equal(layer1.pattern.length, model.spec.nHeads * T * T);
        const row = attentionRow(layer1, 2, 4);
        assert.equal(row.length, 5);
        assert.ok(Math.abs(row.reduce((s, w) => s + w.weight, 0) - 1) < 1e-5);
        await assert.rejects(
          attentionPatterns(model, ids, [2]),
          /layer 2 is out of range: this model's blocks are 0\.\.1/,
        );
        assert.throws(() => attentionRow(layer1, model.spec.nHeads, 0), /head \d+ is out of range/);
      });

      it("TextSpan picks the reference's directions for every head, with the same variance explained", async () => {
        const windowsFlat = toInts('I64', ref.readBytes('textspan.windows'), 'windows');
        const [count, length] = ref.info('textspan.windows').shape;
        const windows = Array.from({ length: count }, (_, i) =>
          windowsFlat.slice(i * length, (i + 1) * length),
        );
        const result = await headTextDirections(model, {
          windows,
          steps: index.textspan.steps,
          rank: index.textspan.rank,
          cache: false,
        });
        const wantIds = toInts('I64', ref.readBytes('textspan.ids'), 'ids');
        const wantRank = toInts('I64', ref.readBytes('textspan.rank'), 'rank');
        const wantFraction = ref.readF32('textspan.fraction');
        const wantTotal = ref.readF32('textspan.total');
        const m = index.textspan.steps;
        assert.equal(result.tokens, count * (length - 1));
        for (const h of result.heads) {
          const i = h.layer * model.spec.nHeads + h.head;
          assert.equal(h.rank, wantRank[i], `layer ${h.layer} head ${h.head}: rank`);
          assert.deepEqual(
            h.directions.map((x) => x.id),
            wantIds.slice(i * m, (i + 1) * m),
            `layer ${h.layer} head ${h.head}: chosen tokens`,
          );
          h.directions.forEach((x, s) =>
            assert.ok(
              Math.abs(x.fraction - wantFraction[i * m + s]) <= TOLERANCE,
              `fraction ${h.layer}.${h.head}.${s}`,
            ),
          );
          assert.ok(Math.abs(h.explained - wantTotal[i]) <= TOLERANCE);
        }
      });
    });
  }

  describe('TextSpan on a constructed case', () => {
    // Outputs x = ẑ·R in d = 6 dimensions with k = 3: ẑ's coordinates are independent with variances 9, 4, 1
    // (and a mean), and R maps them onto pool directions 5, 2 and 7. The pool also holds distractors that
    // lean towards those directions. Greedy TextSpan must pick 5, 2, 7 and explain 9/14, 4/14, 1/14.
    const d = 6;
    const k = 3;
    const unit = (v: number[]): number[] => {
      const n = Math.hypot(...v);
      return v.map((x) => x / n);
    };
    const a = unit([1, 1, 0, 0, 0, 0]);
    const b = unit([1, -1, 0, 0, 0, 0]);
    const c = [0, 0, 0, 1, 0, 0];
    const pool: number[][] = [
      unit([1, 0, 0, 0, 0, 0]), // 45° from a and b: variance (9 + 4) / 2 = 6.5 < 9
      unit([0, 0, 1, 0, 0, 0]), // outside the outputs' span
      b,
      unit([0.2, 0.2, 0, 1, 0, 0]),
      unit([0, 0, 0, 0, 1, 1]), // outside
      a,
      unit([0.9, 1, 0, 0, 0, 0.3]), // near a, partly outside: less than a
      c,
    ];
    const readout = Float64Array.from([...a, ...b, ...c]);
    const variances = [9, 4, 1];
    const mean = [0.5, -1, 2];
    const second = new Float64Array(k * k);
    for (let i = 0; i < k; i++)
      for (let j = 0; j < k; j++) second[i * k + j] = (i === j ? variances[i] : 0) + mean[i] * mean[j];

    it('picks the directions the outputs were built from, largest variance first', () => {
      const basis = headBasis({ k, d, second, mean: Float64Array.from(mean), readout }, 80);
      assert.equal(basis.rank, 3);
      assert.ok(Math.abs(basis.totalVariance - 14) < 1e-9);
      const coords = new Float64Array(pool.length * basis.rank);
      pool.forEach((t, r) => {
        for (let i = 0; i < basis.rank; i++) {
          for (let j = 0; j < d; j++) coords[r * basis.rank + i] += t[j] * basis.basis[i * d + j];
        }
      });
      const chosen = greedyDirections(basis, coords, 3);
      assert.deepEqual(
        chosen.map((x) => x.index),
        [5, 2, 7],
      );
      assert.deepEqual(
        chosen.map((x) => Number(x.fraction.toFixed(9))),
        [9 / 14, 4 / 14, 1 / 14].map((x) => Number(x.toFixed(9))),
      );
    });

    it('limits the basis to the rank asked for, and never to directions without variance', () => {
      assert.equal(headBasis({ k, d, second, mean: Float64Array.from(mean), readout }, 2).rank, 2);
      const flat = Float64Array.from(second);
      for (let j = 0; j < k; j++) flat[2 * k + j] = flat[j * k + 2] = 0; // ẑ_3 ≡ 0
      assert.equal(
        headBasis({ k, d, second: flat, mean: Float64Array.from([0.5, -1, 0]), readout }, 80).rank,
        2,
      );
    });
  });

  describe('the TextSpan cache, words pools and token names', () => {
    let model: HookedModel;
    let windows: number[][];
    before(async () => {
      model = await HookedModel.open(path.join(FIXTURES, 'gpt2'), { cacheDir, threads: 1 });
      const rand = seededRandom(3);
      windows = Array.from({ length: 6 }, () => [
        model.tokenizer!.bosTokenId!,
        ...Array.from({ length: 20 }, () => Math.floor((rand() + 0.5) * 290)),
      ]);
    });
    after(async () => model?.dispose());

    it('caches results per model, windows and options', async () => {
      const first = await headTextDirections(model, { windows, steps: 2 });
      assert.equal(first.cached, false);
      const again = await headTextDirections(model, { windows, steps: 2 });
      assert.equal(again.cached, true);
      assert.deepEqual(again.heads, first.heads);
      assert.equal((await headTextDirections(model, { windows, steps: 3 })).cached, false);
      assert.equal((await headTextDirections(model, { windows: windows.slice(1), steps: 2 })).cached, false);
    });

    it('chooses among the words given', async () => {
      const phrases = [' the', ' heads', 'def', ' stream and', ' x'];
      const r = await headTextDirections(model, {
        windows,
        steps: 2,
        pool: { kind: 'words', phrases },
        cache: false,
      });
      assert.equal(r.pool, 'words');
      for (const h of r.heads) {
        assert.equal(h.directions.length, 2);
        for (const x of h.directions) {
          assert.equal(x.id, null);
          assert.equal(x.text, phrases[x.index]);
        }
        assert.notEqual(h.directions[0].index, h.directions[1].index);
      }
    });

    it('names tokens by text or #id, and refuses what is not one token of the vocabulary', async () => {
      assert.equal(await resolveToken(model, '#17'), 17);
      const [t] = await model.tokenize(' the', { prependBos: false });
      assert.equal(await resolveToken(model, ' the'), t.id);
      await assert.rejects(resolveToken(model, '#300'), (e: Error) => {
        assert.ok(e instanceof LoupeError);
        assert.match(e.message, /token id 300 is not in the vocabulary \(ids 0\.\.299\)/);
        return true;
      });
      await assert.rejects(
        resolveToken(model, 'residual stream'),
        /is not one token of this model's vocabulary: it encodes as \d+ tokens/,
      );
      await assert.rejects(
        directLogitAttribution(model, [1, 2, 3], { position: 3 }),
        /position 3 is out of range/,
      );
    });
  });
});
