/**
 * The probe and causal requests of the engine process (src/shared/causalSchemas.ts),
 * end to end through the extension's client and the forked worker, on the
 * tiny GPT-2 fixture with a random SAE: each answer must equal what the
 * engine's own modules compute in this process for the same tokens (the
 * modules themselves are checked against the PyTorch reference in
 * causal-reference.test.ts and probe-*.test.ts), carets must name the right
 * token, and bad input must come back as one clear error.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ablate, parseAblationGroups } from '../../src/engine/causal/ablation';
import { occlude } from '../../src/engine/causal/occlusion';
import { patchHeads, patchResidual } from '../../src/engine/causal/patching';
import { featureDirection, steer } from '../../src/engine/causal/steering';
import { HookedModel } from '../../src/engine/model';
import { probeDirection, scoreText } from '../../src/engine/probes/apply';
import { loadProbe } from '../../src/engine/probes/store';
import { SafetensorsFile } from '../../src/engine/safetensors';
import { Sae } from '../../src/engine/sae/sae';
import { EngineClient, EngineLog } from '../../src/extension/engineClient';
import { FIXTURES, maxAbsDiff, tempDir, writeRandomSae } from './helpers';

const WORKER = path.join(__dirname, '..', '..', 'src', 'engine', 'host', 'worker.ts');
const MODEL = path.join(FIXTURES, 'gpt2');
const TEXT = 'def add(a, b):\n    return a + b\n\nclass Point:\n    x = 1\n';

const quiet: EngineLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe('probe and causal requests', function () {
  this.timeout(120_000);
  let dir: string;
  let client: EngineClient;
  let model: HookedModel;
  let probeDir: string;

  before(async () => {
    dir = tempDir();
    writeRandomSae(path.join(dir, 'sae'), {
      dIn: 32,
      dSae: 64,
      hook: 'blocks.0.hook_resid_post',
      contextSize: null,
    });
    const corpus = path.join(dir, 'corpus');
    fs.mkdirSync(corpus);
    for (let i = 0; i < 6; i++) {
      fs.writeFileSync(path.join(corpus, `f${i}.py`), `def f${i}(x):\n    return x + ${i}\n`.repeat(3));
    }
    client = new EngineClient({ workerFile: WORKER, execArgv: ['--import', 'tsx'], log: quiet });
    const cacheDir = path.join(dir, 'cache');
    await client.request('load', { model: MODEL, sae: path.join(dir, 'sae'), threads: 1, cacheDir });
    model = await HookedModel.open(MODEL, { threads: 1, cacheDir });
    probeDir = path.join(dir, 'probe');
    const trained = await client.request('trainProbe', {
      model: MODEL,
      threads: 1,
      cacheDir,
      labels: { kind: 'regex', pattern: '[0-9+]', corpus },
      hooks: ['blocks.0.hook_resid_pre', 'blocks.1.hook_resid_post'],
      outDir: probeDir,
      maxExamples: 10_000,
      seed: 3,
    });
    assert.deepEqual(
      trained.hooks.map((h) => h.hook),
      ['blocks.0.hook_resid_pre', 'blocks.1.hook_resid_post'],
    );
  });
  after(async () => {
    client.dispose();
    await model.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('trains and saves a probe whose results probeInfo reads back', async () => {
    const info = await client.request('probeInfo', { dir: probeDir });
    const saved = loadProbe(probeDir);
    assert.deepEqual(info.labels, ['other', 'match']);
    assert.deepEqual(info.counts, [saved.meta.counts.other, saved.meta.counts.match]);
    assert.ok(info.counts[1] > 0 && info.counts[0] > info.counts[1]);
    assert.equal(info.trainDocuments + info.testDocuments, 6, 'split by document');
    assert.deepEqual(
      info.hooks.map((h) => h.accuracy),
      saved.meta.hooks.map((h) => h.accuracy),
    );
    for (const h of info.hooks) {
      assert.ok(h.accuracy >= 0 && h.accuracy <= 1);
      assert.ok(h.controlAccuracy !== null && h.selectivity !== null);
      assert.ok(Math.abs(h.selectivity - (h.accuracy - h.controlAccuracy)) < 1e-12);
    }
    await assert.rejects(client.request('probeInfo', { dir: path.join(dir, 'nothing') }), /no probe\.json/);
  });

  it('scores every token of a text as the engine does, and exports the direction', async () => {
    const applied = await client.request('applyProbe', {
      dir: probeDir,
      text: TEXT,
      hook: null,
      label: null,
    });
    const direct = await scoreText(model, loadProbe(probeDir), TEXT);
    assert.equal(applied.hook, direct.hook);
    assert.equal(applied.scored, 'match');
    assert.deepEqual(
      [...applied.starts],
      direct.tokens.map((t) => t.start),
    );
    assert.ok(
      maxAbsDiff(
        applied.scores,
        direct.tokens.map((t) => t.score),
      ) < 1e-6,
    );
    const out = path.join(dir, 'direction.safetensors');
    const exported = await client.request('exportProbeDirection', {
      dir: probeDir,
      hook: 'blocks.0.hook_resid_pre',
      label: null,
      out,
    });
    assert.equal(exported.width, 32);
    const file = SafetensorsFile.open(out);
    assert.equal(file.metadata.hook, 'blocks.0.hook_resid_pre');
    const want = probeDirection(model, loadProbe(probeDir), { hook: 'blocks.0.hook_resid_pre' }).direction;
    assert.ok(maxAbsDiff(file.readF32('direction'), want) === 0);
    await assert.rejects(
      client.request('applyProbe', { dir: probeDir, text: TEXT, hook: null, label: 'keyword' }),
      /no label 'keyword'; its labels are other, match/,
    );
  });

  it('occludes the tokens before the caret, explaining the prediction after its token', async () => {
    const offset = TEXT.indexOf('return') + 3; // inside "return": its token is the one explained
    const r = await client.request('occlusion', { text: TEXT, offset, target: null, versus: null });
    const tokens = await model.tokenize(TEXT);
    const position = tokens.findIndex((t) => t.start < offset && offset <= t.end);
    assert.equal(r.position, position);
    assert.equal(r.effects.length, position + 1);
    const direct = await occlude(
      model,
      tokens.slice(0, position + 1).map((t) => t.id),
      { position },
    );
    assert.equal(r.target.id, direct.target);
    assert.ok(maxAbsDiff(r.effects, direct.effects) < 1e-5);
    assert.equal(r.effects[0], 0, 'BOS is not occluded');
    await assert.rejects(
      client.request('occlusion', { text: TEXT, offset: 0, target: null, versus: null }),
      /no text before the caret/,
    );
  });

  it('patches two texts of the same length, per layer × position and per head', async () => {
    const clean = 'x = a + b';
    const corrupted = 'x = a - b';
    const preview = await client.request('patchPreview', { clean, corrupted });
    assert.equal(preview.clean.length, preview.corrupted.length);
    const target = `#${preview.cleanTop[0].id}`;
    const versus = `#${preview.cleanTop[1].id}`;
    const r = await client.request('patch', { clean, corrupted, target, versus, site: 'resid_pre' });
    const ids = async (t: string) => (await model.tokenize(t)).map((x) => x.id);
    const options = { target: preview.cleanTop[0].id, versus: preview.cleanTop[1].id };
    const residual = await patchResidual(model, await ids(clean), await ids(corrupted), options);
    const heads = await patchHeads(model, await ids(clean), await ids(corrupted), options);
    assert.deepEqual(r.residual.rowLabels, ['L0', 'L1']);
    assert.equal(r.residual.values.length, 2 * preview.clean.length);
    assert.ok(maxAbsDiff(r.residual.logitDiffs, residual.logitDiffs.flat()) < 1e-5);
    assert.ok(maxAbsDiff(r.heads.logitDiffs, heads.logitDiffs.flat()) < 1e-5);
    assert.equal(r.heads.values.length, 2 * 4);
    assert.ok(Math.abs(r.cleanLogitDiff - residual.cleanLogitDiff) < 1e-5);
    await assert.rejects(
      client.request('patch', { clean, corrupted: 'x = a - b - c', target, versus, site: 'resid_pre' }),
      /the clean text is \d+ tokens and the corrupted text \d+/,
    );
  });

  it('steers with an SAE feature and with a probe direction, greedy and sampled', async () => {
    const prompt = 'def add(a, b):';
    const r = await client.request('steer', {
      prompt,
      direction: { kind: 'feature', index: 5 },
      hook: null,
      strength: 8,
      tokens: 6,
      seed: 7,
      temperature: 1,
    });
    assert.equal(r.hook, 'blocks.0.hook_resid_post');
    const sae = Sae.load(path.join(dir, 'sae'));
    try {
      const ids = (await model.tokenize(prompt)).map((t) => t.id);
      const base = { hook: r.hook, direction: featureDirection(sae, 5), strength: 8, tokens: 6 };
      const greedy = await steer(model, ids, base);
      const sampled = await steer(model, ids, { ...base, sample: true, seed: 7 });
      assert.equal(r.greedy.steered, greedy.steered.text);
      assert.equal(r.greedy.unsteered, greedy.unsteered.text);
      assert.equal(r.sampled.steered, sampled.steered.text);
    } finally {
      await sae.dispose();
    }
    const byProbe = await client.request('steer', {
      prompt,
      direction: { kind: 'probe', dir: probeDir, label: null },
      hook: null,
      strength: 4,
      tokens: 3,
      seed: 0,
      temperature: 1,
    });
    assert.match(byProbe.direction, /probe probe \(match\)/);
  });

  it('ablates components and SAE features, watching the prediction at the caret', async () => {
    const offset = TEXT.indexOf('return') + 6;
    const r = await client.request('ablate', {
      text: TEXT,
      offset,
      what: { kind: 'components', spec: 'L0H1,L1.mlp' },
      mode: 'zero',
      meanTexts: [],
    });
    const ids = (await model.tokenize(TEXT)).map((t) => t.id);
    const direct = await ablate(model, ids, parseAblationGroups('L0H1,L1.mlp', model), {
      position: r.position,
    });
    assert.equal(r.effects.length, 1);
    assert.equal(r.effects[0].name, 'L0H1+L1.mlp');
    assert.ok(Math.abs(r.effects[0].deltaLoss - direct.effects[0].deltaLoss) < 1e-5);
    assert.ok(Math.abs(r.effects[0].deltaProb - direct.effects[0].deltaProb) < 1e-6);
    assert.equal(r.target.id, direct.target);
    const features = await client.request('ablate', {
      text: TEXT,
      offset,
      what: { kind: 'features', indices: [1, 2, 3] },
      mode: 'mean',
      meanTexts: [TEXT],
    });
    assert.equal(features.effects.length, 1);
    assert.ok(Number.isFinite(features.effects[0].deltaLoss));
    await assert.rejects(
      client.request('ablate', {
        text: TEXT,
        offset,
        what: { kind: 'components', spec: 'L9H0' },
        mode: 'zero',
        meanTexts: [],
      }),
      /layer/,
    );
  });

  it('runs TCAV in the jobs engine way: scores per hook against random CAVs', async () => {
    const params = {
      model: MODEL,
      threads: 1,
      cacheDir: path.join(dir, 'cache'),
      concept: ['x + 1', 'y + 2', '', 'z + 3', 'w + 4'],
      inputs: ['def f(a):', 'return a'],
      randomCorpus: path.join(dir, 'corpus'),
      target: '#10',
      hooks: ['blocks.0.hook_resid_post', 'blocks.1.hook_resid_post'],
      runs: 3,
      seed: 1,
    };
    const r = await client.request('tcav', params);
    assert.equal(r.concept, 4, 'empty lines are left out');
    assert.equal(r.inputs, 2);
    assert.equal(r.target.id, 10);
    assert.deepEqual(
      r.hooks.map((h) => h.hook),
      params.hooks,
    );
    for (const h of r.hooks) {
      assert.equal(h.scores.length, 3);
      assert.ok(h.scores.every((v) => v >= 0 && v <= 1));
      assert.ok(h.pValue >= 0 && h.pValue <= 1);
      assert.equal(h.significant, h.pValue < r.alpha);
    }
    await assert.rejects(client.request('tcav', { ...params, target: '#100000' }), /not in the vocabulary/);
  });

  it('refuses malformed parameters with an error naming the field', async () => {
    await assert.rejects(
      client.request('occlusion', { text: TEXT, offset: -1, target: null, versus: null }),
      /offset/,
    );
  });
});
