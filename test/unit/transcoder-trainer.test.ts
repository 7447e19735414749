/**
 * The transcoder trainer and evaluation end to end on a tiny model: sets that
 * circuit-tracer's layout describes, predictions that follow its formula,
 * stopping and resuming, layers added to a set, and the loss figures pinned by
 * sets whose answer is known.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openTranscoderSet, saveTranscoderSet } from '../../src/engine/dictionaries/transcoderSet';
import { HookedModel } from '../../src/engine/model';
import { evaluateTranscoders } from '../../src/engine/transcoders/evaluate';
import { TranscoderForward } from '../../src/engine/transcoders/forward';
import { dictionaryFeatures, fitDictionary } from '../../src/engine/dictionaries/fit';
import { openTranscoders } from '../../src/engine/dictionaries/open';
import { TranscoderTrainProgress, trainTranscoders } from '../../src/engine/transcoders/trainer';
import { FIXTURES, maxAbsDiff, tempDir } from './helpers';

const SAMPLES = path.join(__dirname, '..', '..', 'samples');

describe('transcoder trainer', function () {
  let model: HookedModel;
  before(async () => {
    model = await HookedModel.open(path.join(FIXTURES, 'gpt2'), { cacheDir: tempDir(), threads: 1 });
  });
  after(async () => model?.dispose());

  const base = {
    layers: [0, 1],
    corpus: SAMPLES,
    expansion: 4,
    batchSize: 128,
    trainingTokens: 128 * 100,
    contextSize: 32,
    lr: 3e-3,
    threads: 1,
  };
  const d = 32;
  const dTc = 128;

  for (const [architecture, skip] of [
    ['topk', true],
    ['relu', false],
    ['jumprelu', true],
  ] as const) {
    it(`${architecture}${skip ? ' with skip' : ''}: learns every layer and writes a circuit-tracer set`, async () => {
      const outDir = tempDir();
      const seen: TranscoderTrainProgress[] = [];
      const result = await trainTranscoders(model, {
        ...base,
        architecture,
        skip,
        k: 8,
        l1Coefficient: architecture === 'relu' ? 1 : 0.01,
        outDir,
        onProgress: (p) => seen.push(p),
      });
      assert.equal(result.cancelled, false);
      assert.equal(seen.length, 100);
      for (const layer of [0, 1]) {
        const fvu = (p: TranscoderTrainProgress): number => p.layers.find((l) => l.layer === layer)!.fvu;
        const early = seen.slice(0, 10).reduce((a, p) => a + fvu(p), 0) / 10;
        const late = seen.slice(-10).reduce((a, p) => a + fvu(p), 0) / 10;
        assert.ok(late < early * 0.8, `layer ${layer}: FVU fell from ${early} to ${late}`);
      }
      if (architecture === 'topk') assert.ok(seen.every((p) => p.l0 === 8));
      assert.ok(!fs.existsSync(path.join(outDir, 'checkpoint')), 'no checkpoint left after a finished run');
      const config = fs.readFileSync(path.join(outDir, 'config.yaml'), 'utf8');
      assert.match(config, /^model_kind: transcoder_set$/m);
      assert.match(config, /^feature_input_hook: ln2\.hook_normalized$/m);
      assert.match(config, /^feature_output_hook: hook_mlp_out$/m);
      const set = openTranscoderSet(outDir);
      assert.equal(set.nLayers, 2);
      assert.equal(set.dModel, d);
      assert.equal(set.dTranscoder, dTc);
      const want = { topk: 'topk', relu: 'relu', jumprelu: 'jump_relu' }[architecture];
      for (const layer of set.layers) {
        assert.equal(layer.activation.kind, want);
        assert.equal(layer.hasSkip, skip);
        if (architecture === 'jumprelu') assert.ok(layer.readThreshold()!.every((t) => t > 0));
      }
    });
  }

  it("predicts what circuit-tracer's formula computes from the files, and evaluates it so", async () => {
    const outDir = tempDir();
    await trainTranscoders(model, { ...base, architecture: 'topk', skip: true, k: 8, outDir });
    const set = openTranscoderSet(outDir);
    const text = await model.tokenize('def add(a, b):\n    return a + b\n', { prependBos: true });
    const ids = text.map((t) => t.id);
    const hooks = ['blocks.1.ln2.hook_normalized', 'blocks.1.hook_mlp_out'];
    const run = await model.runPadded([ids], { hooks });
    const x = run.hooks.get(hooks[0])!.data;
    const y = run.hooks.get(hooks[1])!.data;
    // circuit-tracer: pre = x·W_encᵀ + b_enc, TopK keeps the k largest, ŷ = f·W_dec + b_dec + x·W_skipᵀ.
    const layer = set.layers[1];
    const wEnc = layer.readEncoder();
    const bEnc = layer.readEncoderBias();
    const wDec = layer.readDecoderRows(Array.from({ length: dTc }, (_, i) => i));
    const bDec = layer.readDecoderBias();
    const wSkip = layer.readSkip()!;
    let sqErr = 0;
    let total = 0;
    for (let t = 1; t < ids.length; t++) {
      const xt = x.subarray(t * d, (t + 1) * d);
      const pre = Array.from(
        { length: dTc },
        (_, f) => bEnc[f] + xt.reduce((a, v, j) => a + v * wEnc[f * d + j], 0),
      );
      const kept = pre
        .map((v, f) => [v, f])
        .sort((a, b) => b[0] - a[0])
        .slice(0, 8);
      for (let j = 0; j < d; j++) {
        let p = bDec[j];
        for (const [v, f] of kept) p += v * wDec[f * d + j];
        for (let i = 0; i < d; i++) p += xt[i] * wSkip[j * d + i];
        sqErr += (p - y[t * d + j]) ** 2;
        total += y[t * d + j] ** 2;
      }
    }
    // Trained on this kind of text, the prediction explains most of the output.
    assert.ok(sqErr < 0.5 * total, `squared error ${sqErr} of ${total}`);
    const file = path.join(tempDir(), 'one.txt');
    fs.writeFileSync(file, 'def add(a, b):\n    return a + b\n');
    const ev = await evaluateTranscoders(model, outDir, { corpus: file, contextSize: 32, threads: 1 });
    assert.equal(ev.tokens, ids.length - 1);
    // The same text, so the same squared error per token.
    assert.ok(
      Math.abs(ev.layers[1].mse - sqErr / (ids.length - 1)) < 1e-3 * (sqErr / (ids.length - 1)),
      JSON.stringify(ev),
    );
    assert.ok(ev.layers.every((l) => l.l0 === 8));
    // The features `loupe features --transcoders` reads from the same set are the ones evaluated here.
    const runs = await dictionaryFeatures(fitDictionary(model, openTranscoders(outDir)), ids);
    const forward = await TranscoderForward.create(layer, set, 1);
    const mine = await forward.run(x.slice(0, ids.length * d));
    await forward.release();
    assert.ok(maxAbsDiff(runs[1].acts.data, mine.features) < 1e-4);
  });

  it('a set that predicts zero recovers nothing: replaced loss = zero-ablated loss, FVU ≥ 1', async () => {
    const dir = tempDir();
    const zeros = (n: number): Float32Array => new Float32Array(n);
    const layer = { W_enc: zeros(dTc * d), b_enc: zeros(dTc), W_dec: zeros(dTc * d), b_dec: zeros(d) };
    saveTranscoderSet(
      dir,
      {
        modelKind: 'transcoder_set',
        featureInputHook: 'ln2.hook_normalized',
        featureOutputHook: 'hook_mlp_out',
        activation: 'relu',
        k: null,
        extra: {},
      },
      { dModel: d, dTranscoder: dTc },
      [layer, layer],
    );
    const ev = await evaluateTranscoders(model, dir, {
      corpus: SAMPLES,
      contextSize: 32,
      maxTokens: 500,
      threads: 1,
    });
    assert.ok(Math.abs(ev.ceReplaced - ev.ceZeroAblated) < 1e-9, JSON.stringify(ev));
    assert.ok(Math.abs(ev.lossRecovered!) < 1e-9);
    assert.notEqual(ev.ceZeroAblated, ev.ceClean);
    for (const l of ev.layers) {
      assert.ok(l.fvu >= 1, `layer ${l.layer} FVU ${l.fvu}`);
      assert.equal(l.deadFraction, 1);
      assert.equal(l.l0, 0);
    }
  });

  it('stops at a checkpoint when cancelled, and resumes to the same end', async () => {
    const outDir = tempDir();
    const controller = new AbortController();
    const first = await trainTranscoders(model, {
      ...base,
      outDir,
      checkpointEvery: 20,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.step === 30) controller.abort();
      },
    });
    assert.equal(first.cancelled, true);
    assert.equal(first.steps, 30);
    assert.ok(
      !fs.existsSync(path.join(outDir, 'config.yaml')),
      'nothing final is written for a cancelled run',
    );
    await assert.rejects(
      trainTranscoders(model, { ...base, layers: [1], outDir, resume: true }),
      /--layer 0,1/,
    );
    const steps: number[] = [];
    const second = await trainTranscoders(model, {
      ...base,
      outDir,
      resume: true,
      onProgress: (p) => steps.push(p.step),
    });
    assert.equal(second.cancelled, false);
    assert.equal(steps[0], 31);
    assert.equal(second.steps, 100);
    assert.equal(openTranscoderSet(outDir).nLayers, 2);
  });

  it('layers trained later join the set; a set of another kind is refused before any work', async () => {
    const outDir = tempDir();
    const short = { ...base, trainingTokens: 128 * 5 };
    await trainTranscoders(model, { ...short, layers: [0], outDir });
    assert.equal(openTranscoderSet(outDir).nLayers, 1);
    await trainTranscoders(model, { ...short, layers: [1], outDir });
    assert.equal(openTranscoderSet(outDir).nLayers, 2);
    await assert.rejects(
      trainTranscoders(model, { ...short, layers: [1], outDir, skip: true }),
      /a set's layers must match/,
    );
    await assert.rejects(
      trainTranscoders(model, { ...short, layers: [1], outDir, architecture: 'relu' }),
      /already holds a transcoder set with activation topk/,
    );
  });
});
