/**
 * A hand-built model where one head, L1H2, alone carries the answer
 * (tools/reference/causal_reference.py builds it: the token at position 1 is
 * A or B, and L1H2 moves it to every later position): patching and ablation
 * must single that head out, and the residual grid must show the answer at
 * position 1 until layer 1 moves it. Plus the causal tools' input errors.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HookedModel } from '../../src/engine/model';
import { ablate, parseAblationGroups } from '../../src/engine/causal/ablation';
import { patchHeads, patchResidual } from '../../src/engine/causal/patching';
import { occlude } from '../../src/engine/causal/occlusion';
import { steer, sampleToken } from '../../src/engine/causal/steering';
import { seededUniform } from '../../src/engine/random';
import { FIXTURES, tempDir } from './helpers';

const dir = path.join(FIXTURES, 'causal', 'one-head');
const ref = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'causal', 'one-head.json'), 'utf8')) as {
  clean: number[];
  corrupted: number[];
  target: number;
  versus: number;
  resid_pre: number[][];
  heads: number[][];
  ablation: {
    clean: { logit_diff: number };
    effects: { targets: string[]; logit_diff: number; loss: number }[];
  };
};

describe('a model where one head carries the answer', function () {
  let model: HookedModel;
  before(async () => {
    model = await HookedModel.open(dir, { cacheDir: tempDir('loupe-one-head-'), threads: 1 });
  });
  after(async () => model.dispose());
  const o = () => ({ target: ref.target, versus: ref.versus });

  it('per-head patching restores the answer through L1H2 alone', async () => {
    const grid = await patchHeads(model, ref.clean, ref.corrupted, o());
    const flat = grid.values.flatMap((row, l) => row.map((v, h) => ({ v, name: `L${l}H${h}` })));
    const best = flat.reduce((a, b) => (b.v > a.v ? b : a));
    assert.equal(best.name, 'L1H2');
    assert.ok(best.v > 0.99, `L1H2 restores ${best.v}`);
    for (const c of flat) if (c.name !== 'L1H2') assert.ok(Math.abs(c.v) < 0.01, `${c.name}: ${c.v}`);
    grid.values.forEach((row, l) => row.forEach((v, h) => assert.ok(Math.abs(v - ref.heads[l][h]) < 1e-4)));
  });

  it('residual patching finds the answer at position 1 until layer 1 moves it', async () => {
    const grid = await patchResidual(model, ref.clean, ref.corrupted, o());
    for (let l = 0; l < 2; l++) {
      grid.values[l].forEach((v, p) => {
        assert.ok(Math.abs(v - ref.resid_pre[l][p]) < 1e-4, `L${l} p${p}: ${v}`);
        assert.ok(p === 1 ? v > 0.99 : Math.abs(v) < 0.01, `L${l} p${p}: ${v}`);
      });
    }
    // After layer 1 the answer sits at the last position too.
    const post = await patchResidual(model, ref.clean, ref.corrupted, { ...o(), site: 'resid_post' });
    assert.ok(post.values[1][ref.clean.length - 1] > 0.99);
    assert.ok(Math.abs(post.values[0][ref.clean.length - 1]) < 0.01);
  });

  it('zero-ablating each head: only L1H2 changes the answer', async () => {
    const report = await ablate(model, ref.clean, parseAblationGroups('heads', model), o());
    assert.equal(report.target, ref.target);
    const drops = report.effects.map((e) => ({ name: e.name, drop: -e.deltaLogitDiff! }));
    const biggest = drops.reduce((a, b) => (b.drop > a.drop ? b : a));
    assert.equal(biggest.name, 'L1H2');
    assert.ok(biggest.drop > 20);
    for (const d of drops) if (d.name !== 'L1H2') assert.ok(Math.abs(d.drop) < 0.5, `${d.name}: ${d.drop}`);
    report.effects.forEach((e, i) => {
      assert.equal(e.name, ref.ablation.effects[i].targets[0]);
      assert.ok(Math.abs(e.ablated.logitDiff! - ref.ablation.effects[i].logit_diff) < 1e-3);
    });
    assert.ok(report.effects.find((e) => e.name === 'L1H2')!.ablated.top[0].id !== ref.target);
  });

  it('occlusion credits the token at position 1', async () => {
    const result = await occlude(model, ref.clean, { target: ref.target, versus: ref.versus });
    const best = result.effects.indexOf(Math.max(...result.effects));
    assert.equal(best, 1);
    assert.ok(result.effects[1] > 10);
  });

  it('refuses bad input in one line', async () => {
    await assert.rejects(
      patchResidual(model, ref.clean, ref.corrupted.slice(0, -1), o()),
      /the clean text has 8 tokens and the corrupted text 7; activation patching needs the same number/,
    );
    await assert.rejects(patchResidual(model, ref.clean, ref.clean, o()), /same logit difference/);
    await assert.rejects(
      patchResidual(model, ref.clean, ref.corrupted, { target: 1, versus: 1 }),
      /target and versus tokens are the same/,
    );
    await assert.rejects(
      patchHeads(model, ref.clean, ref.corrupted, { target: 99, versus: 1 }),
      /outside the vocabulary/,
    );
    await assert.rejects(
      patchResidual(model, ref.clean, ref.corrupted, { ...o(), position: 8 }),
      /position 8 is outside/,
    );
    await assert.rejects(ablate(model, [], [[{ kind: 'mlp', layer: 0 }]]), /no tokens/);
    const d = new Float32Array(16).fill(0.25);
    await assert.rejects(
      steer(model, ref.clean, { hook: 'blocks.9.hook_resid_post', direction: d, strength: 1, tokens: 2 }),
      /unknown hook 'blocks.9.hook_resid_post'/,
    );
    await assert.rejects(
      steer(model, ref.clean, {
        hook: 'blocks.0.hook_resid_post',
        direction: d.subarray(1),
        strength: 1,
        tokens: 2,
      }),
      /has 15 values but blocks.0.hook_resid_post has width 16/,
    );
    await assert.rejects(
      steer(model, ref.clean, { hook: 'blocks.0.hook_resid_post', direction: d, strength: 1, tokens: 9 }),
      /exceed the model's context of 16/,
    );
  });

  it('steering along the answer direction turns B into A; sampling is seeded', async () => {
    const direction = new Float32Array(16);
    direction[0] = 1;
    direction[1] = -1;
    const result = await steer(model, ref.corrupted, {
      hook: 'blocks.1.hook_resid_post',
      direction,
      strength: 40,
      tokens: 2,
    });
    assert.equal(result.unsteered.ids[0], ref.versus);
    assert.equal(result.steered.ids[0], ref.target);
    const sampled = () =>
      steer(model, ref.corrupted, {
        hook: 'blocks.1.hook_resid_post',
        direction,
        strength: 0,
        tokens: 4,
        sample: true,
        seed: 5,
      });
    const a = await sampled();
    const b = await sampled();
    assert.deepEqual(a.steered.ids, b.steered.ids);
    assert.deepEqual(a.steered.ids, a.unsteered.ids, 'strength 0 and one seed: both sides draw alike');
  });

  it('samples in proportion to softmax(logits / T), within the top k', () => {
    const row = Float32Array.from([0, Math.log(3), -Infinity, Math.log(2)]);
    const u = seededUniform(9);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 6000; i++) counts[sampleToken(row, 1, undefined, u)]++;
    assert.equal(counts[2], 0);
    assert.ok(Math.abs(counts[1] / 6000 - 0.5) < 0.03 && Math.abs(counts[0] / 6000 - 1 / 6) < 0.03);
    for (let i = 0; i < 200; i++) assert.notEqual(sampleToken(row, 1, 2, u), 0);
  });
});
