/**
 * The engine process and the extension's client, end to end without VS Code:
 * the worker forked from its TypeScript entry, a tiny checkpoint and an SAE
 * written for it. Windowed analysis must match running each window directly;
 * every request settles (result, engine error, stale, cancelled, process
 * gone); malformed messages are refused in both directions.
 */
import { strict as assert } from 'node:assert';
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EngineToHost } from '../../src/engine/host/protocol';
import { planWindows } from '../../src/engine/host/windows';
import { HookedModel } from '../../src/engine/model';
import { Sae } from '../../src/engine/sae/sae';
import { attachSae, saeFeatures } from '../../src/engine/sae/splice';
import { EngineClient, EngineError, EngineLog } from '../../src/extension/engineClient';
import { FIXTURES, tempDir, writeRandomSae } from './helpers';

const WORKER = path.join(__dirname, '..', '..', 'src', 'engine', 'host', 'worker.ts');
const EXEC_ARGV = ['--import', 'tsx'];
const MODEL = path.join(FIXTURES, 'gpt2');
/** The SAE's context: shorter than the model's 64, so that texts need several windows. */
const SAE_CONTEXT = 24;

/** A random SAE on blocks.0.hook_resid_post of the fixture model (d_model 32). */
function writeSae(dir: string, dIn = 32): void {
  writeRandomSae(dir, { dIn, dSae: 64, hook: 'blocks.0.hook_resid_post', contextSize: SAE_CONTEXT });
}

class QuietLog implements EngineLog {
  readonly lines: string[] = [];
  info = (m: string) => void this.lines.push(m);
  warn = (m: string) => void this.lines.push(m);
  error = (m: string) => void this.lines.push(m);
}

const TEXT = 'def word_counts(text):\n\tcounts = {}\r\n    for w in text.split():  # 世界 🙂\n'.repeat(4);

describe('engine process', function () {
  this.timeout(120_000);
  let dir: string;
  let saeDir: string;
  let client: EngineClient;
  const log = new QuietLog();

  before(async () => {
    dir = tempDir();
    saeDir = path.join(dir, 'sae');
    writeSae(saeDir);
    client = new EngineClient({ workerFile: WORKER, execArgv: EXEC_ARGV, log });
    const loaded = await client.request('load', {
      model: MODEL,
      sae: saeDir,
      threads: 1,
      cacheDir: path.join(dir, 'cache'),
    });
    assert.equal(loaded.saeError, null);
    assert.equal(loaded.sae?.window, SAE_CONTEXT, "windows follow the SAE's training context");
    assert.equal(loaded.sae?.hasFeatureDatabase, false);
  });
  after(() => {
    client.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Both steps of an analysis, as the extension makes them. */
  async function analyse(document: string, version: number, text: string) {
    const tokens = await client.request('tokenize', { document, version, text });
    return { ...tokens, ...(await client.request('analyze', { document, version })) };
  }

  it('analyses a long text in windows that match running each window directly', async () => {
    await assert.rejects(
      client.request('inspect', {
        document: 'file:///a.py',
        version: 1,
        token: 1,
        features: 1,
        predictions: 0,
      }),
      /not analysed yet|no analysis/,
    );
    const r = await analyse('file:///a.py', 1, TEXT);
    assert.ok(r.windows > 3, `${r.windows} windows`);
    assert.equal(r.ids.length, r.starts.length);
    assert.equal(r.starts[0], 0);
    assert.equal(r.ends[r.ends.length - 1], TEXT.length);

    const model = await HookedModel.open(MODEL, { threads: 1, cacheDir: path.join(dir, 'cache') });
    try {
      const sae = attachSae(model, Sae.load(saeDir, { threads: 1, cacheDir: path.join(dir, 'cache') }));
      const ids = Array.from(r.ids);
      const windows = planWindows(ids.length - 1, SAE_CONTEXT - 1, Math.floor(SAE_CONTEXT / 8));
      assert.equal(windows.length, r.windows);
      for (const w of [windows[0], windows[1], windows[windows.length - 1]]) {
        const windowIds = [ids[0], ...ids.slice(1 + w.start, 1 + w.end)];
        const [acts] = await saeFeatures(sae, [windowIds]);
        const [run] = await model.run([windowIds]);
        for (const t of [w.keepFrom, w.end - 1]) {
          const row = 1 + t - w.start; // in the window, after its BOS
          const got = await client.request('inspect', {
            document: 'file:///a.py',
            version: 1,
            token: 1 + t,
            features: 64,
            predictions: 1,
          });
          const dense = acts.data.subarray(row * 64, (row + 1) * 64);
          const active = [...dense].map((a, i) => ({ i, a })).filter((x) => x.a > 0);
          assert.equal(got.activeFeatures, active.length);
          for (const f of got.features) assert.ok(Math.abs(dense[f.index] - f.act) < 1e-5);
          const logits = run.logits.data.subarray(row * 300, (row + 1) * 300);
          const best = logits.indexOf(Math.max(...logits));
          assert.equal(got.predictions[0].id, best, 'the top prediction is the arg max of the logits');
        }
      }
      const top = (await client.request('fileFeatures', { document: 'file:///a.py', version: 1, limit: 3 }))
        .features;
      assert.equal(top.length, 3);
      assert.ok(top[0].act >= top[1].act && top[1].act >= top[2].act);
      const map = await client.request('featureMap', {
        document: 'file:///a.py',
        version: 1,
        feature: top[0].index,
      });
      assert.equal(map.acts.length, ids.length);
      assert.equal(map.max, top[0].act);
      assert.equal(map.activeTokens, top[0].tokens);
      assert.equal(map.acts[0], 0, 'BOS has no features');
    } finally {
      await model.dispose();
    }
  });

  it('reuses the windows an edit at the end leaves as they were', async () => {
    const r = await analyse('file:///a.py', 2, `${TEXT}x = 1\n`);
    assert.ok(r.windowsCached >= r.windows - 2, `${r.windowsCached} of ${r.windows} windows cached`);
  });

  it('answers a request for a version it no longer holds as stale', async () => {
    await assert.rejects(
      client.request('inspect', {
        document: 'file:///a.py',
        version: 1,
        token: 1,
        features: 1,
        predictions: 0,
      }),
      (err: EngineError) => err.stale && !err.cancelled,
    );
    await assert.rejects(
      client.request('featureMap', { document: 'file:///b.py', version: 1, feature: 0 }),
      (err: EngineError) => err.stale,
    );
  });

  it('stops an analysis that is cancelled', async () => {
    let cancel: () => void = () => undefined;
    const token = {
      isCancellationRequested: false,
      onCancellationRequested(listener: () => void) {
        cancel = listener;
        return { dispose: () => undefined };
      },
    };
    await client.request('tokenize', { document: 'file:///c.py', version: 1, text: TEXT.repeat(20) });
    await assert.rejects(
      client.request(
        'analyze',
        { document: 'file:///c.py', version: 1 },
        { token, onProgress: () => cancel() },
      ),
      (err: EngineError) => err.cancelled,
    );
  });

  it('reports an SAE that does not fit the model, and keeps the model', async () => {
    const bad = path.join(dir, 'bad-sae');
    writeSae(bad, 16);
    const loaded = await client.request('load', {
      model: MODEL,
      sae: bad,
      threads: 1,
      cacheDir: path.join(dir, 'cache'),
    });
    assert.equal(loaded.sae, null);
    assert.match(loaded.saeError ?? '', /d_in is 16 .* 32/);
    const r = await analyse('file:///d.py', 1, 'x = 1');
    assert.equal(r.hasFeatures, false);
    const got = await client.request('inspect', {
      document: 'file:///d.py',
      version: 1,
      token: 1,
      features: 5,
      predictions: 2,
    });
    assert.deepEqual(got.features, []);
    assert.equal(got.predictions.length, 2, 'predictions need no SAE');
  });

  it('refuses a model it cannot read, with the reason', async () => {
    const pickled = path.join(dir, 'pickled');
    fs.mkdirSync(pickled);
    fs.copyFileSync(path.join(MODEL, 'config.json'), path.join(pickled, 'config.json'));
    fs.writeFileSync(path.join(pickled, 'pytorch_model.bin'), 'not a pickle');
    await assert.rejects(
      client.request('load', { model: pickled, sae: null, threads: 1, cacheDir: null }),
      (err: EngineError) => /pickle/i.test(err.message) && !err.cancelled,
    );
    await assert.rejects(client.request('hooks', {}), /no model is loaded/);
  });

  it('answers malformed requests with an error, and ignores what is not a request', async () => {
    const child = fork(WORKER, [], {
      execArgv: EXEC_ARGV,
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    });
    try {
      const replies: EngineToHost[] = [];
      child.on('message', (m) => replies.push(m as EngineToHost));
      child.send({ type: 'request', id: 7, method: 'eval', params: {} });
      child.send({ type: 'request', id: 8, method: 'inspect', params: { document: 1 } });
      child.send('hello');
      const deadline = Date.now() + 30_000;
      while (replies.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const byId = (id: number) => replies.find((m) => m.type === 'error' && m.id === id);
      assert.match((byId(7) as { message: string }).message, /method/);
      assert.match((byId(8) as { message: string }).message, /params\.document/);
      assert.ok(replies.some((m) => m.type === 'log' && m.level === 'error'));
    } finally {
      child.kill();
    }
  });

  it('rejects a malformed reply, and every pending request when the process dies', async () => {
    const fake = path.join(dir, 'fake-worker.js');
    fs.writeFileSync(
      fake,
      `process.on('message', (m) => {
        if (m.method === 'hooks') process.send({ type: 'response', id: m.id, result: { hooks: 'all of them' } });
        else process.exit(3);
      });`,
    );
    const exits: string[] = [];
    const c = new EngineClient({ workerFile: fake, log, onExit: (reason) => exits.push(reason) });
    try {
      await assert.rejects(c.request('hooks', {}), /malformed.*hooks\.hooks/);
      await assert.rejects(
        c.request('analyze', { document: 'x', version: 1 }),
        /engine process exited with code 3/,
      );
      assert.deepEqual(exits, ['exited with code 3']);
    } finally {
      c.dispose();
    }
  });
});
