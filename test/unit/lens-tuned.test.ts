/**
 * Tuned-lens training: one step of the hand-derived graph against PyTorch
 * autograd (LayerNorm and RMSNorm models), a short training run that lowers
 * the KL below the logit lens's, cancellation, saving and loading, and the
 * lenses Loupe refuses.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoupeError } from '../../src/engine/errors';
import { ModelLenses } from '../../src/engine/lens/lenses';
import { TunedLens } from '../../src/engine/lens/tunedLens';
import { ADAM, STEP_PARAMS, buildTunedLensStepGraph, stepIo } from '../../src/engine/lens/tunedLensStep';
import { trainTunedLens } from '../../src/engine/lens/tunedLensTrainer';
import { WEIGHTS_FILE } from '../../src/engine/compile';
import { HookedModel } from '../../src/engine/model';
import { Feed, GraphSession } from '../../src/engine/runtime';
import { FIXTURES, maxAbsDiff, tempDir } from './helpers';
import { LENS_FIXTURES, lensReference } from './lensFixtures';

const TOLERANCE = 1e-4;

describe('tuned lens', function () {
  const cacheDir = tempDir('loupe-tuned-cache-');

  for (const name of ['gpt2', 'llama-gqa']) {
    it(`one training step matches PyTorch autograd (${name})`, async () => {
      const model = await HookedModel.open(path.join(FIXTURES, name), { cacheDir, threads: 1 });
      const { ref, index } = lensReference(name);
      const file = path.join(model.compiled.dir, 'graph-test-tuned-step.onnx');
      fs.writeFileSync(file, buildTunedLensStepGraph(model.spec, model.compiled.weights, WEIGHTS_FILE));
      const session = await GraphSession.create(file, { threads: 1 });
      try {
        const input = (key: string): Feed => ({
          type: 'float32',
          dims: ref.info(`step.${key}`).shape,
          data: ref.readF32(`step.${key}`),
        });
        const scalar = (v: number): Feed => ({ type: 'float32', dims: [], data: new Float32Array([v]) });
        const t = index.step.t;
        const feeds: Record<string, Feed> = {
          h: input('h'),
          final: input('final'),
          lr: scalar(index.step.lr),
          bc1: scalar(1 / (1 - ADAM.beta1 ** t)),
          bc2: scalar(1 / (1 - ADAM.beta2 ** t)),
        };
        for (const p of STEP_PARAMS) {
          feeds[p] = input(p);
          feeds[stepIo.m(p)] = input(stepIo.m(p));
          feeds[stepIo.v(p)] = input(stepIo.v(p));
        }
        const outputs = ['kl', ...STEP_PARAMS.flatMap((p) => [p, stepIo.m(p), stepIo.v(p)].map(stepIo.next))];
        const res = await session.run(feeds, outputs);
        for (const out of outputs) {
          const want = ref.readF32(`step.expected.${out}`);
          const diff = maxAbsDiff(res.get(out)!.data, want);
          assert.ok(diff <= TOLERANCE, `${name} ${out}: max abs diff ${diff}`);
        }
        // The step moved the parameters: the comparison above is not of inputs with themselves.
        assert.ok(maxAbsDiff(res.get('W.next')!.data, ref.readF32('step.W')) > 1e-3);
      } finally {
        await session.release();
        await model.dispose();
      }
    });
  }

  describe('training on a corpus', () => {
    let model: HookedModel;
    let corpus: string;
    before(async () => {
      model = await HookedModel.open(path.join(FIXTURES, 'gpt2'), { cacheDir, threads: 1 });
      corpus = path.join(tempDir(), 'corpus.jsonl');
      const texts = [
        'The heads read the residual stream and write to it.',
        'def forward(self, x): return self.unembed(self.norm(x))',
        'Each layer adds what it finds to the residual stream, and the heads move information.',
        'for (let i = 0; i < tokens.length; i++) { total += weights[i] * tokens[i]; }',
      ];
      fs.writeFileSync(corpus, texts.map((text) => JSON.stringify({ text })).join('\n'));
    });
    after(async () => model?.dispose());

    it('starts at the logit lens and lowers the KL of every layer; the saved lens loads and decodes', async () => {
      const out = path.join(tempDir(), 'lens');
      const progress: number[] = [];
      const result = await trainTunedLens(model, {
        corpus,
        outDir: out,
        steps: 60,
        batchTokens: 64,
        lr: 3e-3,
        threads: 1,
        onProgress: (p) => progress.push(p.step),
      });
      assert.equal(result.cancelled, false);
      assert.deepEqual(
        progress,
        Array.from({ length: 60 }, (_, i) => i + 1),
      );
      result.finalKl.forEach((kl, l) =>
        assert.ok(kl < 0.8 * result.initialKl[l], `layer ${l}: ${kl} vs ${result.initialKl[l]}`),
      );

      const lens = TunedLens.load(out);
      assert.equal(lens.translators.length, 2);
      assert.deepEqual(lens.config.loupe_training?.final_kl, result.finalKl);
      const lenses = new ModelLenses(model, { threads: 1 });
      try {
        const { ids } = lensReference('gpt2');
        const tuned = await lenses.tuned(ids, lens, { topK: 3 });
        const logit = await lenses.logit(ids, { topK: 3 });
        // Layer L decodes identically; earlier layers differ.
        assert.deepEqual(tuned.cells[2], logit.cells[2]);
        assert.notDeepEqual(tuned.cells[0], logit.cells[0]);
      } finally {
        await lenses.dispose();
      }
    });

    it('stops when cancelled and writes nothing', async () => {
      const out = path.join(tempDir(), 'lens');
      const controller = new AbortController();
      const result = await trainTunedLens(model, {
        corpus,
        outDir: out,
        steps: 50,
        batchTokens: 32,
        threads: 1,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.step === 3) controller.abort();
        },
      });
      assert.equal(result.cancelled, true);
      assert.equal(result.steps, 3);
      assert.equal(fs.existsSync(path.join(out, 'params.safetensors')), false);
    });

    it('refuses a lens for another model, a pickle, and a lens whose shapes disagree with its config', async () => {
      const other = await HookedModel.open(path.join(FIXTURES, 'gpt2-noprefix'), { cacheDir, threads: 1 });
      try {
        const trained = path.join(tempDir(), 'lens');
        TunedLens.identity(model).save(trained);
        assert.throws(
          () => TunedLens.load(trained).checkFits(other),
          (e: Error) => e instanceof LoupeError && /was trained for another model/.test(e.message),
        );
        const llama = TunedLens.load(path.join(LENS_FIXTURES, 'llama-gqa', 'tuned'));
        assert.throws(
          () => llama.checkFits(model),
          /this tuned lens is for a model with d_model 64 and 2 layers, but .* has d_model 32 and 2 layers/,
        );
        const lenses = new ModelLenses(model, { threads: 1 });
        await assert.rejects(lenses.tuned([1, 2, 3], llama), LoupeError);
        await lenses.dispose();

        const pickle = tempDir();
        fs.writeFileSync(path.join(pickle, 'config.json'), '{"d_model": 32, "num_hidden_layers": 2}');
        fs.writeFileSync(path.join(pickle, 'params.pt'), 'not read');
        assert.throws(
          () => TunedLens.load(pickle),
          /params\.pt is a PyTorch pickle, which Loupe does not load/,
        );

        const lying = tempDir();
        fs.copyFileSync(path.join(trained, 'params.safetensors'), path.join(lying, 'params.safetensors'));
        fs.writeFileSync(path.join(lying, 'config.json'), '{"d_model": 16, "num_hidden_layers": 2}');
        assert.throws(
          () => TunedLens.load(lying),
          /'0\.weight' has shape \[32, 32\], but config\.json's d_model 16/,
        );
      } finally {
        await other.dispose();
      }
    });
  });
});
