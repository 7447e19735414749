/**
 * The long jobs in the engine process (engine/host/jobs.ts), driven as the
 * extension drives its jobs engine: exported activations match running each
 * window directly (whose values reference.test.ts checks against PyTorch);
 * training gives what the trainer gives in-process, stops at a resumable
 * checkpoint when cancelled and resumes to the end; a dashboard build writes a
 * database the analysis engine then finds, and a cancelled rebuild leaves the
 * previous database as it was.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EngineParams } from '../../src/engine/host/protocol';
import { HookedModel } from '../../src/engine/model';
import { SafetensorsFile, toInts } from '../../src/engine/safetensors';
import { Sae } from '../../src/engine/sae/sae';
import { trainSae } from '../../src/engine/sae/trainer';
import { CancelToken, EngineClient, EngineError } from '../../src/extension/engineClient';
import { FIXTURES, maxAbsDiff, tempDir, writeRandomSae } from './helpers';

const WORKER = path.join(__dirname, '..', '..', 'src', 'engine', 'host', 'worker.ts');
const MODEL = path.join(FIXTURES, 'gpt2');
const SAMPLES = path.join(__dirname, '..', '..', 'samples');
const TEXT = 'def word_counts(text):\n\tcounts = {}\r\n    for w in text.split():  # 世界 🙂\n'.repeat(3);

/** A cancellation token the test fires by hand, as VS Code's progress Cancel button would. */
class ManualToken implements CancelToken {
  isCancellationRequested = false;
  private readonly listeners: (() => void)[] = [];
  cancel(): void {
    this.isCancellationRequested = true;
    for (const l of this.listeners) l();
  }
  onCancellationRequested(listener: () => void) {
    this.listeners.push(listener);
    return { dispose: () => undefined };
  }
}

describe('jobs in the engine process', function () {
  this.timeout(240_000);
  const dir = tempDir();
  const cacheDir = path.join(dir, 'cache');
  let client: EngineClient;
  let model: HookedModel;

  before(async () => {
    client = new EngineClient({
      workerFile: WORKER,
      execArgv: ['--import', 'tsx'],
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    model = await HookedModel.open(MODEL, { threads: 1, cacheDir });
  });
  after(async () => {
    client.dispose();
    await model.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const job = { model: MODEL, threads: 1, cacheDir };

  it('exports activations in TransformerLens shapes, a window per batch row, as a direct run gives them', async () => {
    const hooks = ['blocks.0.attn.hook_pattern', 'blocks.0.mlp.hook_post', 'blocks.1.hook_resid_post'];
    const out = path.join(dir, 'export', 'acts.safetensors');
    const fractions: number[] = [];
    const r = await client.request(
      'exportActivations',
      { ...job, text: TEXT, hooks, logits: true, out, source: 'a.py' },
      { onProgress: (_, f) => f !== null && fractions.push(f) },
    );
    const tokens = await model.tokenize(TEXT);
    const body = tokens.slice(1).map((t) => t.id);
    const windows: number[][] = [];
    for (let i = 0; i < body.length; i += 63) windows.push([tokens[0].id, ...body.slice(i, i + 63)]);
    assert.ok(windows.length >= 3, `${windows.length} windows`);
    const [B, T] = [windows.length, 64];
    assert.equal(r.out, out);
    assert.equal(r.tokens, tokens.length);
    assert.equal(r.windows, B);
    assert.equal(r.bytes, fs.statSync(out).size);
    assert.equal(fractions[fractions.length - 1], 1);
    assert.deepEqual(
      r.tensors.map((t) => [t.name, t.shape]),
      [
        ['blocks.0.attn.hook_pattern', [B, 4, T, T]],
        ['blocks.0.mlp.hook_post', [B, T, 64]],
        ['blocks.1.hook_resid_post', [B, T, 32]],
        ['logits', [B, T, 300]],
        ['tokens', [B, T]],
        ['attention_mask', [B, T]],
      ],
    );
    assert.deepEqual(
      fs.readdirSync(path.dirname(out)),
      ['acts.safetensors'],
      'no temporary file is left beside it',
    );

    const file = SafetensorsFile.open(out);
    assert.equal(file.metadata.source, 'a.py');
    assert.equal(file.metadata.windows, String(B));
    const ints = (name: string) => toInts('I64', file.readBytes(name), name);
    const ids = ints('tokens');
    const mask = ints('attention_mask');
    const runs = await model.run(windows, { hooks });
    windows.forEach((w, b) => {
      const n = w.length;
      assert.deepEqual(ids.slice(b * T, b * T + n), w);
      assert.deepEqual(mask.slice(b * T, (b + 1) * T), [...Array(n).fill(1), ...Array(T - n).fill(0)]);
      const direct = runs[b];
      // Row by row over the exported batch row, against the direct run cut to the window's length.
      const check = (name: string, got: Float32Array, want: Float32Array) => {
        const diff = maxAbsDiff(got, want);
        assert.ok(diff < 1e-5, `${name}, window ${b}: max abs diff ${diff}`);
      };
      const rowOf = (name: string, width: number) =>
        file.readF32(name).subarray(b * T * width, b * T * width + n * width);
      check('logits', rowOf('logits', 300), direct.logits.data);
      check(
        'hook_post',
        rowOf('blocks.0.mlp.hook_post', 64),
        direct.hooks.get('blocks.0.mlp.hook_post')!.data,
      );
      check(
        'resid_post',
        rowOf('blocks.1.hook_resid_post', 32),
        direct.hooks.get('blocks.1.hook_resid_post')!.data,
      );
      const pattern = file.readF32('blocks.0.attn.hook_pattern').subarray(b * 4 * T * T, (b + 1) * 4 * T * T);
      const want = direct.hooks.get('blocks.0.attn.hook_pattern')!.data; // [1, 4, n, n]
      let diff = 0;
      let padding = 0;
      for (let h = 0; h < 4; h++) {
        for (let q = 0; q < T; q++) {
          for (let k = 0; k < T; k++) {
            const v = pattern[(h * T + q) * T + k];
            if (q < n && k < n) diff = Math.max(diff, Math.abs(v - want[(h * n + q) * n + k]));
            else padding = Math.max(padding, Math.abs(v));
          }
        }
      }
      assert.ok(diff < 1e-5, `pattern, window ${b}: max abs diff ${diff}`);
      assert.equal(padding, 0, 'padded positions hold zeros');
    });
  });

  it('refuses an unknown hook by name and an empty text', async () => {
    const out = path.join(dir, 'bad.safetensors');
    await assert.rejects(
      client.request('exportActivations', {
        ...job,
        text: TEXT,
        hooks: ['blocks.9.hook_resid_post'],
        logits: false,
        out,
        source: null,
      }),
      /unknown hook 'blocks\.9\.hook_resid_post'/,
    );
    await assert.rejects(
      client.request('exportActivations', {
        ...job,
        text: '',
        hooks: ['blocks.0.hook_resid_post'],
        logits: false,
        out,
        source: null,
      }),
      /no tokens/,
    );
    assert.ok(!fs.existsSync(out));
  });

  const training: Omit<EngineParams<'trainSae'>, 'outDir' | 'resume'> = {
    ...job,
    hook: 'blocks.0.hook_resid_post',
    corpus: SAMPLES,
    architecture: 'topk',
    expansion: 4,
    k: 8,
    trainingTokens: 128 * 60,
    batchSize: 128,
    contextSize: 32,
    checkpointEvery: 10,
    seed: 7,
  };

  it('trains an SAE with the options given, as the trainer does in-process', async () => {
    const outDir = path.join(dir, 'trained');
    const lines: string[] = [];
    const r = await client.request(
      'trainSae',
      { ...training, outDir, resume: false },
      { onProgress: (m) => lines.push(m) },
    );
    assert.equal(r.steps, 60);
    assert.equal(r.tokens, 128 * 60);
    assert.ok(
      lines.some((l) =>
        /^step \d+\/60 · loss [\d.]+ · FVU [\d.]+ · L0 [\d.]+ · dead [\d.]+% · [\d,]+ act\/s · ETA \d+s$/.test(
          l,
        ),
      ),
      lines.join('\n'),
    );
    const direct = await trainSae(model, {
      hook: training.hook,
      corpus: training.corpus,
      outDir: path.join(dir, 'trained-direct'),
      architecture: 'topk',
      expansion: 4,
      k: 8,
      trainingTokens: 128 * 60,
      batchSize: 128,
      contextSize: 32,
      checkpointEvery: 10,
      seed: 7,
      threads: 1,
    });
    assert.ok(r.metrics && direct.last);
    assert.equal(r.metrics.fvu, direct.last.fvu);
    assert.equal(r.metrics.l0, direct.last.l0);
    assert.equal(r.metrics.loss, direct.last.loss);
    const a = Sae.load(outDir);
    const b = Sae.load(path.join(dir, 'trained-direct'));
    assert.equal(maxAbsDiff(a.params.get('W_dec')!.data, b.params.get('W_dec')!.data), 0);
    assert.equal(a.config.dSae, 128);
    await a.dispose();
    await b.dispose();
  });

  it('stops at a checkpoint when cancelled, which the tree offers to resume, and resumes to the end', async () => {
    const outDir = path.join(dir, 'stopped');
    const token = new ManualToken();
    const params = { ...training, trainingTokens: 128 * 400, outDir, resume: false };
    await assert.rejects(
      client.request('trainSae', params, {
        token,
        onProgress: (m) => {
          const step = /^step (\d+)/.exec(m);
          if (step && Number(step[1]) >= 15) token.cancel();
        },
      }),
      (err: EngineError) => err.cancelled,
    );
    const described = await client.request('describeFolders', { models: [], saes: [outDir], hubCache: dir });
    const [stopped] = described.saes;
    assert.equal(stopped.config, null, 'nothing to load yet');
    assert.ok(stopped.checkpoint, 'a checkpoint to resume from');
    assert.ok(
      stopped.checkpoint.step >= 15 && stopped.checkpoint.step < 400,
      `step ${stopped.checkpoint.step}`,
    );
    assert.equal(stopped.checkpoint.steps, 400);
    assert.equal(stopped.checkpoint.hook, training.hook);
    assert.equal(stopped.checkpoint.corpus, SAMPLES);

    await assert.rejects(
      client.request('trainSae', { ...params, hook: 'blocks.1.hook_resid_post', resume: true }),
      /the checkpoint trains an SAE on blocks\.0\.hook_resid_post, not blocks\.1\.hook_resid_post/,
    );
    const first: number[] = [];
    const resumed = await client.request(
      'trainSae',
      { ...params, resume: true },
      {
        onProgress: (m) => {
          const step = /^step (\d+)/.exec(m);
          if (step) first.push(Number(step[1]));
        },
      },
    );
    assert.ok(first[0] > stopped.checkpoint.step, `resumed after the checkpoint, at step ${first[0]}`);
    assert.equal(resumed.steps, 400);
    const done = (await client.request('describeFolders', { models: [MODEL], saes: [outDir], hubCache: dir }))
      .saes[0];
    assert.equal(done.checkpoint, null);
    assert.equal(done.config?.trainedByLoupe, true);
    assert.equal(done.config?.trainingTokens, 128 * 400);
    assert.deepEqual(done.fits, [MODEL]);
  });

  it('builds dashboards the analysis engine then finds; a cancelled rebuild leaves the database as it was', async () => {
    const saeDir = path.join(dir, 'sae');
    writeRandomSae(saeDir, { dIn: 32, dSae: 64, k: 8, hook: 'blocks.0.hook_resid_post', contextSize: 24 });
    const params = { ...job, sae: saeDir, corpus: SAMPLES, maxTokens: 1500, contextSize: null, seed: 3 };
    const stages = new Set<string>();
    const built = await client.request('buildDashboards', params, {
      onProgress: (m) => stages.add(m.split(':')[0]),
    });
    assert.equal(built.dir, path.join(saeDir, 'features'));
    assert.equal(built.features, 64);
    assert.ok(built.tokens >= 1500 && built.liveFeatures > 0, JSON.stringify(built));
    assert.ok(stages.has('Reading the corpus') && stages.has('Laying out the map'), [...stages].join(', '));

    const analysis = new EngineClient({
      workerFile: WORKER,
      execArgv: ['--import', 'tsx'],
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    try {
      const loaded = await analysis.request('load', { model: MODEL, sae: saeDir, threads: 1, cacheDir });
      assert.equal(loaded.sae?.hasFeatureDatabase, true);
    } finally {
      analysis.dispose();
    }

    const index = path.join(saeDir, 'features', 'index.json');
    const before = fs.readFileSync(index, 'utf8');
    const token = new ManualToken();
    await assert.rejects(
      client.request(
        'buildDashboards',
        { ...params, maxTokens: 200_000, seed: 4 },
        { token, onProgress: (m) => m.startsWith('Reading the corpus') && token.cancel() },
      ),
      (err: EngineError) => err.cancelled,
    );
    assert.equal(fs.readFileSync(index, 'utf8'), before, 'the previous database is untouched');
    assert.deepEqual(
      fs.readdirSync(saeDir).sort(),
      ['cfg.json', 'features', 'sae_weights.safetensors'],
      'no temporary folder is left',
    );
  });
});
