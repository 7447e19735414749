/**
 * Train Transcoders… as the extension runs it: the engine-process job trains
 * every layer when none is named, gives what the trainer gives in-process,
 * stops at a checkpoint when cancelled and resumes to the end.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openTranscoderSet } from '../../src/engine/dictionaries/transcoderSet';
import { EngineParams } from '../../src/engine/host/protocol';
import { HookedModel } from '../../src/engine/model';
import { trainTranscoders } from '../../src/engine/transcoders/trainer';
import { CancelToken, EngineClient, EngineError } from '../../src/extension/engineClient';
import { FIXTURES, maxAbsDiff, tempDir } from './helpers';

const WORKER = path.join(__dirname, '..', '..', 'src', 'engine', 'host', 'worker.ts');
const MODEL = path.join(FIXTURES, 'gpt2');
const SAMPLES = path.join(__dirname, '..', '..', 'samples');

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

describe('Train Transcoders job in the engine process', function () {
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

  const training: Omit<EngineParams<'trainTranscoders'>, 'outDir' | 'resume'> = {
    model: MODEL,
    threads: 1,
    cacheDir,
    layers: [],
    corpus: SAMPLES,
    architecture: 'topk',
    skip: true,
    expansion: 4,
    k: 8,
    trainingTokens: 128 * 40,
    batchSize: 128,
    contextSize: 32,
    checkpointEvery: 10,
    seed: 7,
  };

  it('trains every layer with the options given, as the trainer does in-process', async () => {
    const outDir = path.join(dir, 'trained');
    const lines: string[] = [];
    const r = await client.request(
      'trainTranscoders',
      { ...training, outDir, resume: false },
      { onProgress: (m) => lines.push(m) },
    );
    assert.equal(r.steps, 40);
    assert.deepEqual(
      r.layers.map((l) => l.layer),
      [0, 1],
    );
    assert.ok(
      lines.some((l) => /^step \d+\/40 · loss [\d.]+ · FVU [\d.]+ · L0 8\.0 · /.test(l)),
      lines.join('\n'),
    );
    const direct = await trainTranscoders(model, {
      layers: [0, 1],
      corpus: SAMPLES,
      outDir: path.join(dir, 'direct'),
      architecture: 'topk',
      skip: true,
      expansion: 4,
      k: 8,
      trainingTokens: 128 * 40,
      batchSize: 128,
      contextSize: 32,
      checkpointEvery: 10,
      seed: 7,
      threads: 1,
    });
    assert.ok(r.metrics && direct.last);
    assert.equal(r.metrics.fvu, direct.last.fvu);
    assert.equal(r.layers[1].fvu, direct.last.layers[1].fvu);
    const a = openTranscoderSet(outDir).layers[1];
    const b = openTranscoderSet(path.join(dir, 'direct')).layers[1];
    assert.equal(maxAbsDiff(a.readSkip()!, b.readSkip()!), 0);
    assert.equal(maxAbsDiff(a.readEncoder(), b.readEncoder()), 0);
  });

  it('stops at a checkpoint when cancelled and resumes to the end; a layer the model lacks is refused', async () => {
    const outDir = path.join(dir, 'stopped');
    const token = new ManualToken();
    const params = { ...training, trainingTokens: 128 * 200, outDir, resume: false };
    await assert.rejects(
      client.request('trainTranscoders', params, {
        token,
        onProgress: (m) => {
          const step = /^step (\d+)/.exec(m);
          if (step && Number(step[1]) >= 12) token.cancel();
        },
      }),
      (err: EngineError) => err.cancelled,
    );
    assert.ok(fs.existsSync(path.join(outDir, 'checkpoint', 'state.json')));
    assert.ok(!fs.existsSync(path.join(outDir, 'config.yaml')));
    const steps: number[] = [];
    const resumed = await client.request(
      'trainTranscoders',
      { ...params, resume: true },
      {
        onProgress: (m) => {
          const step = /^step (\d+)/.exec(m);
          if (step) steps.push(Number(step[1]));
        },
      },
    );
    assert.ok(steps[0] > 12, `resumed after the checkpoint, at step ${steps[0]}`);
    assert.equal(resumed.steps, 200);
    assert.equal(openTranscoderSet(outDir).nLayers, 2);
    await assert.rejects(
      client.request('trainTranscoders', { ...params, outDir: path.join(dir, 'bad'), layers: [2] }),
      /layer 2: gpt2 has 2 layers/,
    );
  });
});
