/**
 * The causal tools against the independent PyTorch reference
 * (tools/reference/causal_reference.py) on the `gpt2` fixture: zero and mean
 * ablation of heads, layers and neurons, SAE feature ablation, activation
 * patching grids, occlusion, greedy steering, and TCAV's central-difference
 * derivatives against autograd.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HookedModel } from '../../src/engine/model';
import { SafetensorsFile } from '../../src/engine/safetensors';
import { Sae } from '../../src/engine/sae/sae';
import { attachSae } from '../../src/engine/sae/splice';
import {
  AblationTarget,
  ablate,
  ablateSaeFeatures,
  parseAblationGroups,
} from '../../src/engine/causal/ablation';
import { patchHeads, patchResidual } from '../../src/engine/causal/patching';
import { occlude } from '../../src/engine/causal/occlusion';
import { steer } from '../../src/engine/causal/steering';
import { directionalDerivatives } from '../../src/engine/causal/tcav';
import { FINAL_NORMALIZED, logitReadout, readLogit } from '../../src/engine/causal/predictions';
import { FIXTURES, tempDir } from './helpers';

const CAUSAL = path.join(FIXTURES, 'causal');

interface PredictionRef {
  loss: number;
  logit: number;
  prob: number;
  logit_diff: number;
}
interface Gpt2Ref {
  clean: number[];
  corrupted: number[];
  target: number;
  versus: number;
  clean_logit_diff: number;
  corrupted_logit_diff: number;
  ablation: {
    clean: PredictionRef;
    effects: ({ mode: 'zero' | 'mean'; targets: string[] } & PredictionRef)[];
  };
  patching: Record<string, number[][]>;
  occlusion: { zero_embedding_logit: number[]; replacement: number; replacement_logit_diff: number[] };
  steering: { hook: string; strength: number; tokens: number; unsteered: number[]; steered: number[] };
  derivatives: { hook: string; target: number; inputs: number[][]; values: number[] };
  sae_ablation: { hook: string; effects: ({ mode: 'zero' | 'mean'; features: number[] } & PredictionRef)[] };
}

const ref = JSON.parse(fs.readFileSync(path.join(CAUSAL, 'gpt2.json'), 'utf8')) as Gpt2Ref;
const vectors = SafetensorsFile.open(path.join(CAUSAL, 'gpt2.safetensors'));

function near(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected}`);
}

function gridNear(actual: number[][], expected: number[][], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: rows`);
  actual.forEach((row, r) => {
    assert.equal(row.length, expected[r].length, `${what}: row ${r}`);
    row.forEach((v, c) => near(v, expected[r][c], tol, `${what}[${r}][${c}]`));
  });
}

describe('causal tools vs the PyTorch reference', function () {
  let model: HookedModel;
  before(async () => {
    model = await HookedModel.open(path.join(FIXTURES, 'gpt2'), {
      cacheDir: tempDir('loupe-causal-'),
      threads: 1,
    });
  });
  after(async () => model.dispose());

  it('zero and mean ablation: loss, logit, probability and logit difference', async () => {
    for (const mode of ['zero', 'mean'] as const) {
      const expected = ref.ablation.effects.filter((e) => e.mode === mode);
      const groups: AblationTarget[][] = expected.map(
        (e) => parseAblationGroups(e.targets.join(','), model)[0],
      );
      const report = await ablate(model, ref.clean, groups, { mode, versus: ref.versus, maxBatch: 5 });
      assert.equal(report.target, ref.target);
      assert.equal(report.position, ref.clean.length - 1);
      near(report.clean.loss, ref.ablation.clean.loss, 1e-4, 'clean loss');
      near(report.clean.logitDiff!, ref.ablation.clean.logit_diff, 1e-4, 'clean logit diff');
      report.effects.forEach((e, i) => {
        const want = expected[i];
        assert.equal(e.name, want.targets.join('+'));
        near(e.ablated.loss, want.loss, 1e-4, `${mode} ${e.name} loss`);
        near(e.ablated.logit, want.logit, 1e-4, `${mode} ${e.name} logit`);
        near(e.ablated.prob, want.prob, 1e-5, `${mode} ${e.name} prob`);
        near(e.ablated.logitDiff!, want.logit_diff, 1e-4, `${mode} ${e.name} logit diff`);
        near(e.deltaLoss, want.loss - ref.ablation.clean.loss, 1e-4, `${mode} ${e.name} Δloss`);
      });
    }
  });

  it('sweeps every head, attention and MLP layer', () => {
    assert.deepEqual(
      parseAblationGroups('heads', model).map((g) => g.map((t) => `${t.kind}${t.layer}`).join()),
      Array.from({ length: 8 }, (_, i) => `head${Math.floor(i / 4)}`),
    );
    assert.equal(parseAblationGroups('mlps', model).length, 2);
    assert.equal(parseAblationGroups('L0H1, L1.mlp', model)[0].length, 2);
    assert.throws(() => parseAblationGroups('L0H9', model), /heads 0\.\.3/);
    assert.throws(() => parseAblationGroups('L5.mlp', model), /layers 0\.\.1/);
    assert.throws(() => parseAblationGroups('head 3', model), /cannot read 'head 3'/);
  });

  it('SAE feature ablation through the splice with its error term', async () => {
    const sae = Sae.load(path.join(CAUSAL, 'sae-gpt2'), {
      cacheDir: tempDir('loupe-causal-sae-'),
      threads: 1,
    });
    try {
      const att = attachSae(model, sae);
      for (const mode of ['zero', 'mean'] as const) {
        const expected = ref.sae_ablation.effects.filter((e) => e.mode === mode);
        const report = await ablateSaeFeatures(
          att,
          ref.clean,
          expected.map((e) => e.features),
          { mode, target: ref.target, versus: ref.versus },
        );
        near(report.clean.loss, ref.ablation.clean.loss, 1e-4, 'clean loss');
        report.effects.forEach((e, i) => {
          near(e.ablated.loss, expected[i].loss, 1e-4, `${mode} ${e.name} loss`);
          near(e.ablated.logit, expected[i].logit, 1e-4, `${mode} ${e.name} logit`);
          near(e.ablated.logitDiff!, expected[i].logit_diff, 1e-4, `${mode} ${e.name} logit diff`);
        });
        assert.ok(
          report.effects.some((e) => Math.abs(e.deltaLoss) > 1e-3),
          'the features matter',
        );
      }
    } finally {
      await sae.dispose();
    }
  });

  it('activation patching: residual stream by layer × position, heads, heads × position', async () => {
    const o = { target: ref.target, versus: ref.versus, maxBatch: 7 };
    const pre = await patchResidual(model, ref.clean, ref.corrupted, o);
    near(pre.cleanLogitDiff, ref.clean_logit_diff, 1e-4, 'clean LD');
    near(pre.corruptedLogitDiff, ref.corrupted_logit_diff, 1e-4, 'corrupted LD');
    // A normalised value carries the reference's error divided by LD_clean − LD_corrupted (about 0.58).
    gridNear(pre.values, ref.patching['resid_pre-denoise'], 5e-4, 'resid_pre');
    const post = await patchResidual(model, ref.clean, ref.corrupted, {
      ...o,
      site: 'resid_post',
      direction: 'noise',
    });
    gridNear(post.values, ref.patching['resid_post-noise'], 5e-4, 'resid_post noising');
    const attn = await patchResidual(model, ref.clean, ref.corrupted, { ...o, site: 'attn_out' });
    gridNear(attn.values, ref.patching['attn_out-denoise'], 5e-4, 'attn_out');
    const heads = await patchHeads(model, ref.clean, ref.corrupted, o);
    gridNear(heads.values, ref.patching.heads, 5e-4, 'heads');
    assert.deepEqual(heads.rowLabels, ['L0', 'L1']);
    const perPosition = await patchHeads(model, ref.clean, ref.corrupted, { ...o, perPosition: true });
    gridNear(perPosition.values, ref.patching['head-positions'], 5e-4, 'heads × position');
    assert.equal(perPosition.rowLabels[5], 'L1H1');
    // Patching the first residual stream at every changed position restores the clean run exactly.
    const changed = ref.clean.flatMap((id, p) => (id !== ref.corrupted[p] ? [p] : []));
    assert.ok(changed.every((p) => Math.abs(pre.values[0][p]) > 0));
  });

  it('occlusion by zeroed embedding and by replacement', async () => {
    const zero = await occlude(model, ref.clean);
    assert.equal(zero.target, ref.target);
    assert.equal(zero.method, 'zero-embedding');
    zero.effects.forEach((v, p) => near(v, ref.occlusion.zero_embedding_logit[p], 1e-4, `zero ${p}`));
    const replaced = await occlude(model, ref.clean, {
      target: ref.target,
      versus: ref.versus,
      replacement: ref.occlusion.replacement,
      maxBatch: 4,
    });
    assert.equal(replaced.metric, 'logit-diff');
    replaced.effects.forEach((v, p) =>
      near(v, ref.occlusion.replacement_logit_diff[p], 1e-4, `replaced ${p}`),
    );
    assert.equal(zero.effects[0], 0, 'BOS is not part of the text');
  });

  it('greedy steering, side by side with the unsteered continuation', async () => {
    const s = ref.steering;
    const result = await steer(model, ref.clean, {
      hook: s.hook,
      direction: vectors.readF32('steering.direction'),
      strength: s.strength,
      tokens: s.tokens,
    });
    assert.deepEqual(result.unsteered.ids, s.unsteered);
    assert.deepEqual(result.steered.ids, s.steered);
    assert.equal(typeof result.steered.text, 'string');
  });

  it('reads a logit difference off the final norm exactly as the logits give it, in every family', async () => {
    for (const name of ['gpt2', 'neox-parallel', 'llama-gqa', 'qwen2']) {
      const m = await HookedModel.open(path.join(FIXTURES, name), {
        cacheDir: tempDir('loupe-readout-'),
        threads: 1,
      });
      try {
        const ids = [5, 17, 42, 99, 7, 3];
        const [run] = await m.run([ids], { hooks: [FINAL_NORMALIZED] });
        const n = run.hooks.get(FINAL_NORMALIZED)!;
        const V = m.spec.dVocab;
        for (const [t, v] of [
          [1, 2],
          [40, null],
        ] as const) {
          const readout = logitReadout(m, t, v);
          for (let p = 0; p < ids.length; p++) {
            const want = run.logits.data[p * V + t] - (v === null ? 0 : run.logits.data[p * V + v]);
            near(readLogit(n, 0, p, readout), want, 1e-4, `${name} position ${p}`);
          }
        }
      } finally {
        await m.dispose();
      }
    }
  });

  it('central differences along a direction match autograd', async () => {
    const d = ref.derivatives;
    const direction = vectors.readF32('derivatives.direction');
    const values = await directionalDerivatives(model, d.inputs, d.hook, direction, 0.05, d.target);
    values.forEach((v, i) => near(v, d.values[i], 2e-3 * Math.max(1, Math.abs(d.values[i])), `input ${i}`));
  });
});
