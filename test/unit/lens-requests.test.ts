/**
 * The engine process's lens and head requests (engine/host/lensRequests.ts),
 * driven through the extension's client as the views drive them: the lens
 * grid of every kind against the PyTorch reference (tools/reference/
 * lens_reference.py) on a document whose tokens are the reference's; long
 * documents cut to the context with the window ending after the columns;
 * attention rows mapped back to document tokens; direct logit attribution
 * and TextSpan against the reference; errors in one line; a tuned lens
 * trained in the engine process and then used by the grid; cancellation.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EngineResult } from '../../src/engine/host/protocol';
import { ModelLenses } from '../../src/engine/lens/lenses';
import { HookedModel } from '../../src/engine/model';
import { toInts } from '../../src/engine/safetensors';
import { CancelToken, EngineClient, EngineError } from '../../src/extension/engineClient';
import { FIXTURES, tempDir } from './helpers';
import { LENS_FIXTURES, LensReference, lensReference } from './lensFixtures';

const WORKER = path.join(__dirname, '..', '..', 'src', 'engine', 'host', 'worker.ts');
/** The reference's text (tools/reference/lens_reference.py reads case0 of the gpt2 fixture): BOS + 9 tokens. */
const TEXT = 'The heads read the';
const TOLERANCE = 1e-4;
const DOC = 'file:///lens.txt';
const LONG_DOC = 'file:///long.txt';
const LONG_TEXT = 'The heads read the residual stream and write to it. '.repeat(6);

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

describe('lens and head requests in the engine process', function () {
  this.timeout(120_000);
  const dir = tempDir();
  const cacheDir = path.join(dir, 'cache');
  const modelDir = path.join(dir, 'gpt2');
  let client: EngineClient;
  let model: HookedModel;
  let ref: LensReference;
  let V: number;
  let longIds: number[];

  before(async () => {
    ref = lensReference('gpt2');
    // The fixture model with the reference's TextSpan windows as its held-out sample (what the views read by default).
    fs.cpSync(path.join(FIXTURES, 'gpt2'), modelDir, { recursive: true });
    const windows = toInts('I64', ref.ref.readBytes('textspan.windows'), 'windows');
    const [count, length] = ref.ref.info('textspan.windows').shape;
    const items = Array.from({ length: count }, (_, i) => ({
      ids: windows.slice(i * length, (i + 1) * length),
    }));
    fs.writeFileSync(path.join(modelDir, 'heldout-sample.json'), JSON.stringify({ items }));
    client = new EngineClient({
      workerFile: WORKER,
      execArgv: ['--import', 'tsx'],
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    const loaded = await client.request('load', { model: modelDir, sae: null, threads: 1, cacheDir });
    assert.equal(loaded.model.nHeads, 4);
    model = await HookedModel.open(modelDir, { threads: 1, cacheDir });
    V = model.spec.dVocab;
    const t = await client.request('tokenize', { document: DOC, version: 1, text: TEXT });
    assert.deepEqual(Array.from(t.ids), ref.ids, "the document's tokens are the reference's");
    const long = await client.request('tokenize', { document: LONG_DOC, version: 1, text: LONG_TEXT });
    longIds = Array.from(long.ids);
    assert.ok(longIds.length > 2 * model.spec.nCtx, `${longIds.length} tokens`);
  });
  after(async () => {
    client.dispose();
    await model.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Every cell of a grid over positions 1..9 against the reference's log-probabilities [L+1, T, V]. */
  function checkAgainstReference(grid: EngineResult<'lensGrid'>, key: string): void {
    const want = ref.ref.readF32(key);
    const T = ref.ids.length;
    const columns = grid.positions.length;
    const k = grid.top;
    assert.deepEqual(grid.layers, [0, 1, 2]);
    for (let i = 0; i < grid.layers.length; i++) {
      for (let j = 0; j < columns; j++) {
        const p = grid.positions[j];
        const row = want.subarray((i * T + p) * V, (i * T + p + 1) * V);
        const sorted = Float64Array.from(row).sort().reverse();
        const at = i * columns + j;
        for (let r = 0; r < k; r++) {
          const prob = grid.topProbs[at * k + r];
          assert.ok(Math.abs(Math.log(prob) - sorted[r]) <= TOLERANCE, `${key} L${i} p${p}: top ${r}`);
        }
        let entropy = 0;
        for (let v = 0; v < V; v++) entropy -= Math.exp(row[v]) * row[v];
        assert.ok(Math.abs(grid.entropy[at] - entropy) <= TOLERANCE, `${key} L${i} p${p}: entropy`);
        if (p + 1 < T) {
          const next = ref.ids[p + 1];
          assert.ok(Math.abs(grid.nextProbs[at] - Math.exp(row[next])) <= TOLERANCE, `${key}: next prob`);
          const surely = 1 + row.filter((x) => x > row[next] + TOLERANCE).length;
          const maybe = row.filter((x) => x > row[next] - TOLERANCE).length;
          const rank = grid.nextRanks[at];
          assert.ok(rank >= surely && rank <= maybe, `${key} L${i} p${p}: rank ${rank}`);
        } else {
          assert.equal(grid.nextRanks[at], 0, 'the last token has no next token');
          assert.equal(grid.nextWords[j], -1);
        }
      }
    }
  }

  const gridParams = {
    document: DOC,
    version: 1,
    from: 1,
    to: 10,
    variant: 'self' as const,
    tunedLens: null,
    top: 5,
  };

  it('the logit lens grid matches the reference at every layer and token', async () => {
    const grid = await client.request('lensGrid', { ...gridParams, kind: 'logit' });
    assert.deepEqual(Array.from(grid.positions), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(grid.truncated, 0);
    assert.equal(grid.nLayers, 2);
    checkAgainstReference(grid, 'logit.logprobs');
    // Words are the tokens' display texts; each column's next token is the document's.
    assert.equal(grid.words[grid.nextWords[0]], await model.tokenizer!.displayText(ref.ids[2]));
  });

  it('the tuned lens and both attention-free projections match the reference', async () => {
    const tuned = await client.request('lensGrid', {
      ...gridParams,
      kind: 'tuned',
      tunedLens: path.join(LENS_FIXTURES, 'gpt2', 'tuned'),
    });
    checkAgainstReference(tuned, 'tuned.logprobs');
    for (const variant of ['self', 'skip'] as const) {
      const grid = await client.request('lensGrid', { ...gridParams, kind: 'attention-free', variant });
      assert.equal(grid.variant, variant);
      checkAgainstReference(grid, `free_${variant}.logprobs`);
    }
  });

  it('says how to get a tuned lens when none is chosen, and refuses bad ranges', async () => {
    await assert.rejects(
      client.request('lensGrid', { ...gridParams, kind: 'tuned' }),
      /no tuned lens is loaded: choose one with 'Loupe: Load Tuned Lens…' or train one/,
    );
    await assert.rejects(
      client.request('lensGrid', { ...gridParams, kind: 'tuned', tunedLens: path.join(dir, 'nowhere') }),
      /no such tuned-lens folder/,
    );
    await assert.rejects(
      client.request('lensGrid', { ...gridParams, kind: 'logit', from: 4, to: 4 }),
      /not a range of the document's 10 tokens/,
    );
    await assert.rejects(
      client.request('lensGrid', { ...gridParams, kind: 'logit', version: 2 }),
      (err: EngineError) => err.stale,
    );
  });

  it('cuts a long selection to the context and ends the window one token after it', async () => {
    const nCtx = model.spec.nCtx;
    const lenses = new ModelLenses(model, { threads: 1 });
    try {
      // Everything: the columns start at the selection and fill the context; the last one has no next token.
      const all = await client.request('lensGrid', {
        ...gridParams,
        document: LONG_DOC,
        kind: 'logit',
        from: 1,
        to: longIds.length,
      });
      assert.equal(all.positions.length, nCtx - 1);
      assert.equal(all.truncated, longIds.length - 1 - (nCtx - 1));
      assert.equal(all.nextRanks[all.positions.length - 1], 0);

      // A stretch in the middle: the window holds BOS, the context before it, and the token after it.
      const from = 150;
      const to = 170;
      const mid = await client.request('lensGrid', {
        ...gridParams,
        document: LONG_DOC,
        kind: 'logit',
        from,
        to,
      });
      assert.deepEqual(
        Array.from(mid.positions),
        Array.from({ length: to - from }, (_, i) => from + i),
      );
      const start = to - (nCtx - 1); // body index (after BOS) of the window's first token
      const window = [longIds[0], ...longIds.slice(1 + start, 1 + to)];
      assert.equal(window.length, nCtx);
      const direct = await lenses.logit(window, {
        positions: Array.from({ length: to - from }, (_, i) => from - start + i),
        topK: 5,
      });
      direct.cells.forEach((row, i) =>
        row.forEach((cell, j) => {
          const at = i * (to - from) + j;
          assert.ok(Math.abs(mid.topProbs[at * 5] - cell.top[0].prob) < 1e-6);
          assert.equal(mid.words[mid.topWords[at * 5]], cell.top[0].text);
          assert.equal(mid.nextRanks[at], cell.target!.rank, 'every column has its next token');
        }),
      );
    } finally {
      await lenses.dispose();
    }
  });

  it("a token's attention is its row of hook_pattern, keyed by document token", async () => {
    const run = async (ids: number[], layer: number) =>
      (await model.runHooksPadded([ids], [`blocks.${layer}.attn.hook_pattern`])).hooks.get(
        `blocks.${layer}.attn.hook_pattern`,
      )!.data;
    const H = model.spec.nHeads;
    const T = ref.ids.length;
    const pattern = await run(ref.ids, 1);
    const one = await client.request('attention', {
      document: DOC,
      version: 1,
      token: 6,
      layer: 1,
      head: 2,
    });
    assert.deepEqual(Array.from(one.keys), [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(one.heads, 1);
    const want = pattern.subarray((2 * T + 6) * T, (2 * T + 6) * T + 7);
    for (let k = 0; k < 7; k++) assert.ok(Math.abs(one.weights[k] - want[k]) < 1e-6);

    const all = await client.request('attention', {
      document: DOC,
      version: 1,
      token: 9,
      layer: 0,
      head: null,
    });
    assert.equal(all.heads, H);
    for (let h = 0; h < H; h++) {
      const sum = all.weights.subarray(h * 10, (h + 1) * 10).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-5, `head ${h} sums to ${sum}`);
    }

    // In a long document, the keys are those of the analysis window that holds the token.
    const token = longIds.length - 3;
    const far = await client.request('attention', {
      document: LONG_DOC,
      version: 1,
      token,
      layer: 1,
      head: 0,
    });
    assert.equal(far.keys[0], 0, 'BOS starts every window');
    assert.equal(far.keys[far.keys.length - 1], token);
    const window = [longIds[0], ...Array.from(far.keys.subarray(1), (k) => longIds[k])];
    const farPattern = await run(window, 1);
    const q = window.length - 1;
    const Tw = window.length;
    for (let k = 0; k < window.length; k++) {
      assert.ok(Math.abs(far.weights[k] - farPattern[q * Tw + k]) < 1e-6);
    }
    for (let k = 2; k < far.keys.length; k++) assert.equal(far.keys[k], far.keys[k - 1] + 1);

    await assert.rejects(
      client.request('attention', { document: DOC, version: 1, token: 3, layer: 2, head: 0 }),
      /layer 2 is out of range: this model's blocks are 0..1/,
    );
    await assert.rejects(
      client.request('attention', { document: DOC, version: 1, token: 3, layer: 0, head: 4 }),
      /head 4 is out of range/,
    );
  });

  it('direct logit attribution matches the reference, for a token and for A versus B', async () => {
    for (const c of ref.index.dla) {
      const a = await client.request('logitAttribution', {
        document: DOC,
        version: 1,
        token: c.position,
        target: `#${c.target}`,
        versus: c.versus === null ? null : `#${c.versus}`,
      });
      const close = (got: number, key: string) => {
        const want = ref.ref.readF32(`${c.name}.${key}`)[0];
        assert.ok(Math.abs(got - want) < TOLERANCE * Math.max(1, Math.abs(want)), `${c.name}.${key}`);
      };
      assert.equal(a.target.id, c.target);
      assert.equal(a.versus?.id ?? null, c.versus);
      close(a.embed, 'embed');
      close(a.posEmbed!, 'pos_embed');
      close(a.logit, 'logit');
      close(a.constant, 'constant');
      const heads = ref.ref.readF32(`${c.name}.heads`);
      a.heads.flat().forEach((v, i) => assert.ok(Math.abs(v - heads[i]) < TOLERANCE, `head ${i}`));
      const mlp = ref.ref.readF32(`${c.name}.mlp`);
      a.mlp.forEach((v, i) => assert.ok(Math.abs(v - mlp[i]) < TOLERANCE, `mlp ${i}`));
      assert.ok(Math.abs(a.total - a.logit) < 1e-3, 'the parts add up to the logit');
    }
    // No target: the model's own prediction there.
    const [run] = await model.run([ref.ids]);
    const logits = run.logits.data.subarray(4 * V, 5 * V);
    const best = logits.indexOf(Math.max(...logits));
    const own = await client.request('logitAttribution', {
      document: DOC,
      version: 1,
      token: 4,
      target: null,
      versus: null,
    });
    assert.equal(own.target.id, best);
    await assert.rejects(
      client.request('logitAttribution', {
        document: DOC,
        version: 1,
        token: 4,
        target: 'heads read',
        versus: null,
      }),
      /is not one token of this model's vocabulary/,
    );
  });

  it("TextSpan picks the reference's directions for every head, then answers from the cache", async () => {
    const messages: string[] = [];
    const r = await client.request(
      'headDirections',
      { corpus: null, maxTokens: null, steps: ref.index.textspan.steps },
      { onProgress: (m) => messages.push(m) },
    );
    assert.equal(r.cached, false);
    assert.ok(
      messages.some((m) => /window \d+\/12/.test(m)),
      messages.join('\n'),
    );
    assert.match(r.source, /held-out sample/);
    const ids = toInts('I64', ref.ref.readBytes('textspan.ids'), 'ids');
    const fraction = ref.ref.readF32('textspan.fraction');
    const m = ref.index.textspan.steps;
    assert.equal(r.heads.length, 2 * 4);
    for (const h of r.heads) {
      const at = (h.layer * 4 + h.head) * m;
      for (let s = 0; s < m; s++) {
        assert.equal(
          h.directions[s].text,
          await model.tokenizer!.displayText(ids[at + s]),
          `L${h.layer}H${h.head} #${s}`,
        );
        assert.ok(Math.abs(h.directions[s].fraction - fraction[at + s]) < 1e-3);
      }
    }
    const again = await client.request('headDirections', { corpus: null, maxTokens: null, steps: m });
    assert.equal(again.cached, true);
    assert.deepEqual(again.heads, r.heads);
  });

  it('TextSpan over a corpus can be cancelled', async () => {
    const corpus = path.join(dir, 'corpus.txt');
    fs.writeFileSync(corpus, LONG_TEXT.repeat(20));
    const token = new ManualToken();
    const done = client.request(
      'headDirections',
      { corpus, maxTokens: null, steps: 3 },
      { token, onProgress: () => token.cancel() },
    );
    await assert.rejects(done, (err: EngineError) => err.cancelled);
    // It stopped before the end: nothing was cached for that corpus.
    const after = await client.request('headDirections', { corpus, maxTokens: null, steps: 3 });
    assert.equal(after.cached, false);
  });

  it('trains a tuned lens in the engine process, which the grid then reads; a cancelled run writes nothing', async () => {
    const corpus = path.join(dir, 'train.txt');
    fs.writeFileSync(corpus, LONG_TEXT);
    const outDir = path.join(dir, 'my-lens');
    const progress: (number | null)[] = [];
    const r = await client.request(
      'trainTunedLens',
      { model: modelDir, threads: 1, cacheDir, corpus, outDir, steps: 3, batchTokens: 32 },
      { onProgress: (_m, f) => progress.push(f) },
    );
    assert.equal(r.steps, 3);
    assert.equal(r.tokens, 96);
    assert.equal(r.initialKl.length, 2);
    assert.ok(progress.includes(1), 'the last step reports the whole way');
    assert.ok(fs.existsSync(path.join(outDir, 'params.safetensors')));
    const grid = await client.request('lensGrid', { ...gridParams, kind: 'tuned', tunedLens: outDir });
    assert.equal(grid.kind, 'tuned');
    // The last layer is the model's own prediction, whatever the lens.
    const logit = await client.request('lensGrid', { ...gridParams, kind: 'logit' });
    const last = 2 * 9 * 5;
    assert.ok(Math.abs(grid.topProbs[last] - logit.topProbs[last]) < 1e-6);

    const cancelledOut = path.join(dir, 'cancelled-lens');
    const token = new ManualToken();
    await assert.rejects(
      client.request(
        'trainTunedLens',
        { model: modelDir, threads: 1, cacheDir, corpus, outDir: cancelledOut, steps: 1000, batchTokens: 32 },
        { token, onProgress: (m) => m.startsWith('step') && token.cancel() },
      ),
      (err: EngineError) => err.cancelled,
    );
    assert.ok(!fs.existsSync(path.join(cancelledOut, 'params.safetensors')));
  });
});
