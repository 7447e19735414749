/** The SAE trainer end to end on a tiny model: it learns, saves SAELens output, and stops and resumes cleanly. */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HookedModel } from '../../src/engine/model';
import { evaluateSae } from '../../src/engine/sae/evaluate';
import { Sae } from '../../src/engine/sae/sae';
import { attachSae, spliceSae } from '../../src/engine/sae/splice';
import { TrainProgress, trainSae } from '../../src/engine/sae/trainer';
import { FIXTURES, tempDir } from './helpers';

const SAMPLES = path.join(__dirname, '..', '..', 'samples');

describe('SAE trainer', function () {
  let model: HookedModel;
  before(async () => {
    model = await HookedModel.open(path.join(FIXTURES, 'gpt2'), { cacheDir: tempDir(), threads: 1 });
  });
  after(async () => model?.dispose());

  const base = {
    hook: 'blocks.0.hook_resid_post',
    corpus: SAMPLES,
    expansion: 4,
    batchSize: 128,
    trainingTokens: 128 * 120,
    contextSize: 32,
    lr: 3e-3,
    l1Coefficient: 1,
    threads: 1,
  };

  for (const architecture of ['relu', 'topk'] as const) {
    it(`${architecture}: reconstruction improves and the output loads as an SAE that splices`, async () => {
      const outDir = tempDir();
      const seen: TrainProgress[] = [];
      const result = await trainSae(model, {
        ...base,
        architecture,
        k: 8,
        outDir,
        onProgress: (p) => seen.push(p),
      });
      assert.equal(result.cancelled, false);
      assert.equal(seen.length, 120);
      const early = seen.slice(0, 10).reduce((a, p) => a + p.fvu, 0) / 10;
      const late = seen.slice(-10).reduce((a, p) => a + p.fvu, 0) / 10;
      assert.ok(late < early * 0.8, `FVU fell from ${early} to ${late}`);
      if (architecture === 'topk') assert.ok(seen.every((p) => p.l0 <= 8 + 1e-6));
      for (const f of ['cfg.json', 'sae_weights.safetensors', 'sparsity.safetensors', 'training_log.jsonl']) {
        assert.ok(fs.existsSync(path.join(outDir, f)), f);
      }
      assert.ok(!fs.existsSync(path.join(outDir, 'checkpoint')), 'no checkpoint left after a finished run');
      const sae = Sae.load(outDir);
      assert.equal(sae.config.dSae, 128);
      const att = attachSae(model, sae);
      const [spliced] = await spliceSae(att, [[296, 40, 41, 42, 43, 44]], { errorTerm: false });
      assert.ok(Number.isFinite(spliced.ceSpliced));
      const ev = await evaluateSae(model, sae, { corpus: SAMPLES, contextSize: 32, maxTokens: 2000 });
      assert.ok(ev.tokens >= 2000 && ev.fvu !== null && ev.fvu > 0 && ev.fvu < 1, JSON.stringify(ev));
      assert.ok(
        ev.l0 > 0 && ev.lossRecovered !== null && Number.isFinite(ev.lossRecovered),
        JSON.stringify(ev),
      );
      assert.ok(ev.ceZeroAblated !== ev.ceClean);
      sae.dispose();
    });
  }

  it('stops at a checkpoint when cancelled, and resumes to the same end', async () => {
    const outDir = tempDir();
    const controller = new AbortController();
    const first = await trainSae(model, {
      ...base,
      outDir,
      checkpointEvery: 20,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.step === 50) controller.abort();
      },
    });
    assert.equal(first.cancelled, true);
    assert.equal(first.steps, 50);
    const state = JSON.parse(fs.readFileSync(path.join(outDir, 'checkpoint', 'state.json'), 'utf8')) as {
      step: number;
    };
    assert.equal(state.step, 50);
    assert.ok(!fs.existsSync(path.join(outDir, 'cfg.json')), 'nothing final is written for a cancelled run');
    const steps: number[] = [];
    const second = await trainSae(model, {
      ...base,
      outDir,
      resume: true,
      onProgress: (p) => steps.push(p.step),
    });
    assert.equal(second.cancelled, false);
    assert.equal(steps[0], 51);
    assert.equal(second.steps, 120);
    assert.ok(fs.existsSync(path.join(outDir, 'cfg.json')));
  });

  it('refuses a corpus that does not exist', async () => {
    await assert.rejects(
      trainSae(model, { ...base, corpus: '/nonexistent/corpus', outDir: tempDir() }),
      /\/nonexistent\/corpus: corpus not found/,
    );
  });
});
