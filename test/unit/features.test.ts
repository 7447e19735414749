/**
 * Feature dashboards: the pass's statistics and contexts against a brute-force
 * run, logit effects and cosine neighbours against plain JavaScript, labels,
 * the database round trip, and deterministic clusters and maps.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCorpus } from '../../src/engine/corpus';
import { CancelledError } from '../../src/engine/errors';
import { FeatureCollection, collectFeatures } from '../../src/engine/features/collect';
import { buildFeatureDatabase, contextOf } from '../../src/engine/features/build';
import { FeatureDatabase } from '../../src/engine/features/database';
import { decoderRows, logitEffects, normalizeRows, topCosine } from '../../src/engine/features/decoder';
import { HIST_BINS, finishHistogram, massBetween } from '../../src/engine/features/histogram';
import { labelFeature } from '../../src/engine/features/labels';
import { BandSamples, TopContexts } from '../../src/engine/features/samplers';
import { HookedModel } from '../../src/engine/model';
import { seededUniform } from '../../src/engine/random';
import { Sae } from '../../src/engine/sae/sae';
import { attachSae, saeFeatures } from '../../src/engine/sae/splice';
import { trainSae } from '../../src/engine/sae/trainer';
import { FIXTURES, tempDir } from './helpers';

const ROOT = path.join(__dirname, '..', '..');
const SAMPLES = path.join(ROOT, 'samples');
const CTX = 32;

describe('feature dashboards', function () {
  let model: HookedModel;
  let sae: Sae;
  let saeDir: string;
  let cache: string;
  let col: FeatureCollection;

  before(async () => {
    cache = tempDir();
    model = await HookedModel.open(path.join(FIXTURES, 'gpt2'), { cacheDir: cache, threads: 1 });
    saeDir = tempDir();
    await trainSae(model, {
      hook: 'blocks.0.hook_resid_post',
      corpus: SAMPLES,
      outDir: saeDir,
      architecture: 'relu',
      expansion: 4,
      batchSize: 128,
      trainingTokens: 128 * 100,
      contextSize: CTX,
      lr: 3e-3,
      l1Coefficient: 1,
      threads: 1,
    });
    sae = Sae.load(saeDir, { cacheDir: cache, threads: 1 });
    col = await collectFeatures(model, sae, SAMPLES, {
      contextSize: CTX,
      topK: 5,
      bands: 3,
      samplesPerBand: 4,
      left: 3,
      right: 2,
      windowsPerRun: 3,
    });
  });
  after(async () => {
    await sae?.dispose();
    await model?.dispose();
  });

  /** Every window of the corpus cut as the pass cuts it, with its activations from a separate run. */
  async function bruteForce(): Promise<{
    docText: string[];
    windows: { doc: number; ids: number[]; starts: number[]; acts: Float32Array }[];
  }> {
    const att = attachSae(model, sae);
    const bos = model.tokenizer!.bosTokenId!;
    const docText: string[] = [];
    const windows: { doc: number; ids: number[]; starts: number[]; acts: Float32Array }[] = [];
    for await (const doc of readCorpus(SAMPLES)) {
      const toks = await model.tokenize(doc.text, { prependBos: false });
      docText.push(doc.text);
      for (let i = 0; i < toks.length; i += CTX - 1) {
        const body = toks.slice(i, i + CTX - 1);
        const ids = [bos, ...body.map((t) => t.id)];
        const [acts] = await saeFeatures(att, [ids]);
        windows.push({
          doc: docText.length - 1,
          ids,
          starts: [0, ...body.map((t) => t.start)],
          acts: acts.data,
        });
      }
    }
    return { docText, windows };
  }

  it('keeps the true top activations, counts and histograms of every feature', async () => {
    const { docText, windows } = await bruteForce();
    const dSae = sae.config.dSae;
    const tokens = windows.reduce((a, w) => a + w.ids.length - 1, 0);
    assert.equal(col.tokens, tokens);
    assert.equal(col.documents.length, docText.length);
    let checkedContexts = 0;
    for (let f = 0; f < dSae; f++) {
      const perWindow: number[] = [];
      let fires = 0;
      let sum = 0;
      for (const w of windows) {
        let best = 0;
        for (let p = 1; p < w.ids.length; p++) {
          const a = w.acts[p * dSae + f];
          if (a > 0) {
            fires++;
            sum += a;
            best = Math.max(best, a);
          }
        }
        if (best > 0) perWindow.push(best);
      }
      perWindow.sort((a, b) => b - a);
      const kept = col.top.sorted(f);
      assert.equal(kept.length, Math.min(5, perWindow.length), `feature ${f}: number of top contexts`);
      kept.forEach((e, i) => assert.ok(Math.abs(e.act - perWindow[i]) < 1e-4, `feature ${f} top ${i}`));
      // Batching may flip activations within rounding of zero, nothing more.
      assert.ok(
        Math.abs(col.fires[f] - fires) <= 1,
        `feature ${f}: ${col.fires[f]} vs ${fires} active tokens`,
      );
      assert.ok(Math.abs(col.sums[f] - sum) < 1e-3 * Math.max(1, sum));
      const hist = col.histograms.subarray(f * HIST_BINS, (f + 1) * HIST_BINS).reduce((a, b) => a + b, 0);
      assert.equal(hist, col.fires[f], `feature ${f}: histogram counts add up to the active tokens`);
      const h = finishHistogram(col.histograms.subarray(f * HIST_BINS, (f + 1) * HIST_BINS));
      if (h) {
        assert.equal(
          h.counts.reduce((a, b) => a + b, 0),
          col.fires[f],
        );
        assert.ok(h.counts.length <= 64 && h.edges.length === h.counts.length + 1);
        assert.ok(Math.abs(massBetween(h, 0, Infinity, col.maxAct[f]) - 1) < 1e-9);
      }
      // Contexts: the focus token's activation is the recorded one, the neighbours' are the window's.
      for (const e of kept) {
        const c = contextOf(col, col.topSlots, e.slot, e.act)!;
        // Find the window and position the slot's tokens came from.
        const slots = col.topSlots;
        const o = e.slot * slots.width;
        const n = slots.lengths[e.slot];
        let w: (typeof windows)[number] | undefined;
        let first = -1;
        for (const x of windows) {
          if (x.doc !== slots.docs[e.slot]) continue;
          for (let q = 1; q + n <= x.ids.length && first < 0; q++) {
            let same = true;
            for (let i = 0; i < n && same; i++) {
              same = x.ids[q + i] === slots.ids[o + i] && x.starts[q + i] === slots.starts[o + i];
            }
            if (same) first = q;
          }
          if (first >= 0) {
            w = x;
            break;
          }
        }
        assert.ok(w, `feature ${f}: context found in the corpus`);
        const p = first + c.focus;
        assert.ok(Math.abs(w.acts[p * dSae + f] - e.act) < 1e-4);
        assert.equal(c.tokens[c.focus], docText[w.doc].slice(c.span[0], c.span[1]));
        // Tokens tile the text, except where byte-level tokens share one character (each shows all of it).
        const joined = c.tokens.join('');
        if ([...joined].every((ch) => ch.charCodeAt(0) < 128))
          assert.equal(joined, docText[w.doc].slice(c.range[0], c.range[1]));
        c.acts.forEach((a, i) => {
          assert.ok(Math.abs(a - w.acts[(first + i) * dSae + f]) < 1e-3, `feature ${f}: neighbour ${i}`);
        });
        checkedContexts++;
      }
      // Band samples lie in their bands, no more than asked for.
      const max = col.maxAct[f];
      for (let j = 0; j < 3; j++) {
        const band = col.samples.band(f, j);
        assert.ok(band.length <= 4);
        for (const s of band) assert.ok(s.act >= (j * max) / 3 - 1e-6 && s.act <= ((j + 1) * max) / 3 + 1e-6);
      }
    }
    assert.ok(checkedContexts > 100, `${checkedContexts} contexts checked`);
  });

  it('logit effects and cosine neighbours match a direct computation', async () => {
    const dIn = sae.config.dIn;
    const dSae = sae.config.dSae;
    const weights = model.compiled.weights;
    const read = (name: string): Float32Array => {
      const ext = weights.get(name)!;
      const buf = Buffer.alloc(ext.length);
      const fd = fs.openSync(path.join(model.compiled.dir, 'weights.bin'), 'r');
      fs.readSync(fd, buf, 0, ext.length, ext.offset);
      fs.closeSync(fd);
      return new Float32Array(buf.buffer, buf.byteOffset, ext.length / 4);
    };
    const WU = read(weights.has('W_U_T') ? 'W_U_T' : 'W_E');
    const lnW = read('ln_final.w');
    const V = model.spec.dVocab;
    const rows = decoderRows(sae);
    const effects = await logitEffects(model, sae, 10, { threads: 1 });
    assert.ok(typeof effects !== 'string');
    for (let f = 0; f < dSae; f++) {
      const d = rows.subarray(f * dIn, (f + 1) * dIn);
      const mean = d.reduce((a, b) => a + b, 0) / dIn;
      const r = Array.from(d, (x, j) => (x - mean) * lnW[j]);
      const logits = Array.from({ length: V }, (_, v) => r.reduce((a, x, j) => a + x * WU[v * dIn + j], 0));
      const order = logits.map((_, v) => v).sort((a, b) => logits[b] - logits[a]);
      for (let j = 0; j < 10; j++) {
        const up = effects.promoted.indices[f * 10 + j];
        const down = effects.suppressed.indices[f * 10 + j];
        assert.ok(Math.abs(logits[up] - logits[order[j]]) < 1e-4, `feature ${f} promoted ${j}`);
        assert.ok(Math.abs(effects.promoted.values[f * 10 + j] - logits[order[j]]) < 1e-4);
        assert.ok(Math.abs(logits[down] - logits[order[V - 1 - j]]) < 1e-4, `feature ${f} suppressed ${j}`);
        assert.ok(Math.abs(effects.suppressed.values[f * 10 + j] - logits[order[V - 1 - j]]) < 1e-4);
      }
    }
    const unit = normalizeRows(rows, dIn);
    const near = await topCosine(unit, unit, dIn, 10, cache, {
      aIndex: Int32Array.from({ length: dSae }, (_, i) => i),
      threads: 1,
    });
    for (let f = 0; f < dSae; f++) {
      const cos = Array.from({ length: dSae }, (_, g) => {
        let dot = 0;
        let na = 0;
        let nb = 0;
        for (let j = 0; j < dIn; j++) {
          dot += rows[f * dIn + j] * rows[g * dIn + j];
          na += rows[f * dIn + j] ** 2;
          nb += rows[g * dIn + j] ** 2;
        }
        return dot / Math.sqrt(na * nb);
      });
      const order = cos
        .map((_, g) => g)
        .filter((g) => g !== f)
        .sort((a, b) => cos[b] - cos[a]);
      for (let j = 0; j < 10; j++) {
        const g = near.indices[f * 10 + j];
        assert.notEqual(g, f);
        assert.ok(Math.abs(cos[g] - cos[order[j]]) < 1e-5, `feature ${f} neighbour ${j}`);
        assert.ok(Math.abs(near.values[f * 10 + j] - cos[order[j]]) < 1e-5);
      }
    }
  });

  it('writes a database that round-trips, searches by label, token and index, with deterministic clusters and map', async () => {
    const opts = { contextSize: CTX, threads: 1, clusters: 4, seed: 3, out: path.join(tempDir(), 'db') };
    const built = await buildFeatureDatabase(model, sae, SAMPLES, opts);
    const db = FeatureDatabase.open(built.dir);
    const dSae = sae.config.dSae;
    assert.equal(db.size, dSae);
    assert.equal(db.meta.tokens, col.tokens);
    const live = Array.from({ length: dSae }, (_, i) => i).filter((i) => !db.summary(i).dead);
    assert.equal(live.length, db.meta.liveFeatures);
    for (const i of [0, 17, dSae - 1]) {
      const d = db.dashboard(i);
      assert.equal(d.index, i);
      assert.equal(d.stats.density, db.summary(i).density);
      assert.equal(d.label.text, db.summary(i).label);
      assert.equal(d.logits?.promoted.length, 10);
      assert.equal(d.similar.length, 10);
      if (!d.dead) {
        assert.equal(d.top.length, Math.min(20, d.top.length));
        assert.ok(d.top.every((c, j) => j === 0 || c.act <= d.top[j - 1].act));
        assert.equal(d.top[0].act, d.stats.maxAct);
        assert.equal(d.bands.length, 5);
        assert.ok(Math.abs(d.bands.reduce((a, b) => a + b.fraction, 0) - 1) < 0.01);
      }
    }
    // Listing.
    const byDensity = db.list({ sort: 'density', limit: dSae });
    assert.equal(byDensity.length, dSae);
    assert.ok(byDensity.every((s, j) => j === 0 || s.density <= byDensity[j - 1].density));
    assert.deepEqual(
      db.list({ offset: 5, limit: 3 }).map((s) => s.index),
      [5, 6, 7],
    );
    // Search by label, by one of its tokens, by index.
    const labelled = live
      .map((i) => db.dashboard(i))
      .find((d) => d.label.kind === 'token' && d.label.tokens[0].text.trim().length > 0)!;
    assert.ok(labelled, 'some feature has a token label');
    assert.ok(db.search(labelled.label.text).some((s) => s.index === labelled.index));
    const token = labelled.label.tokens[0].text.trim();
    const byToken = db.search(token, dSae);
    assert.ok(
      byToken.some((s) => s.index === labelled.index),
      `search '${token}' finds ${labelled.index}`,
    );
    assert.equal(db.search(`#${labelled.index}`)[0].index, labelled.index);
    // Clusters partition the live features; one map point per live feature.
    const clusters = db.clusters();
    const members = clusters.flatMap((c) => c.members).sort((a, b) => a - b);
    assert.deepEqual(members, live);
    assert.ok(clusters.every((c) => c.size === c.members.length && c.label.length > 0));
    const map = db.map();
    assert.deepEqual(
      map.map((p) => p.index),
      live,
    );
    assert.ok(map.every((p) => Number.isFinite(p.x) && Number.isFinite(p.y)));
    assert.ok(map.every((p) => db.summary(p.index).cluster === p.cluster));
    // The same build again gives the same clusters and map.
    const again = FeatureDatabase.open(
      (await buildFeatureDatabase(model, sae, SAMPLES, { ...opts, out: path.join(tempDir(), 'db2') })).dir,
    );
    assert.deepEqual(again.clusters(), clusters);
    assert.deepEqual(again.map(), map);
    assert.deepEqual(again.dashboard(labelled.index), db.dashboard(labelled.index));
    // A database of another schema is refused with a message that says what to do.
    const index = JSON.parse(fs.readFileSync(path.join(built.dir, 'index.json'), 'utf8')) as {
      schema: number;
    };
    index.schema = 999;
    fs.writeFileSync(path.join(built.dir, 'index.json'), JSON.stringify(index));
    assert.throws(() => FeatureDatabase.open(built.dir), /schema 999.*rebuild/);
    assert.throws(() => FeatureDatabase.open(tempDir()), /no feature database/);
  });

  it('labels a feature by the tokens that carry its activation, or the token before', () => {
    const vocab = new Map<string, number>();
    const idOf = (t: string): number => {
      if (!vocab.has(t)) vocab.set(t, vocab.size);
      return vocab.get(t)!;
    };
    const ctx = (texts: string[], acts: number[]) => ({
      ids: texts.map(idOf),
      texts,
      acts,
      focus: acts.indexOf(Math.max(...acts)),
    });
    const counts = new Float64Array(10000).fill(5);
    const baseline = { counts, total: 50000 };
    const onImport = [
      ctx(['\n', 'import', ' os', '\n'], [0, 2, 0, 0]),
      ctx(['x', ' =', ' 1', '\n', 'import', ' re'], [0, 0, 0, 0, 1.5, 0]),
      ctx(['\n', 'from', ' a', ' import', ' b'], [0, 0.4, 0, 1.8, 0]),
    ];
    const l1 = labelFeature(onImport, baseline);
    assert.equal(l1.kind, 'token');
    assert.match(l1.text, /^"import"/);
    assert.ok(l1.coverage > 0.5 && l1.coverage <= 1);
    // Fires on whatever follows "def": the token before carries the label.
    const afterDef = [
      ctx(['def', ' foo', '('], [0, 1, 0]),
      ctx(['def', ' bar', '('], [0, 1.2, 0]),
      ctx(['def', ' baz', ':'], [0, 0.9, 0]),
      ctx(['x', 'def', ' qux'], [0, 0, 1.1]),
    ];
    const l2 = labelFeature(afterDef, baseline);
    assert.equal(l2.kind, 'previous');
    assert.equal(l2.text, 'after "def"');
    assert.deepEqual(labelFeature([], baseline), { text: '', kind: 'none', tokens: [], coverage: 0 });
  });

  it('samplers keep the exact top k, and uniform in-band samples once the maximum is known', () => {
    const rand = seededUniform(5);
    const values = Array.from({ length: 2000 }, () => rand() * 10);
    const top = new TopContexts(1, 7);
    values.forEach((v) => top.offer(0, v));
    assert.deepEqual(
      top.sorted(0).map((e) => e.act),
      [...values]
        .sort((a, b) => b - a)
        .slice(0, 7)
        .map((v) => Math.fround(v)),
    );
    const bands = new BandSamples(1, 4, 3, seededUniform(9));
    const max = Math.max(...values);
    const ordered = [max, ...values.filter((v) => v !== max)];
    ordered.forEach((v) => bands.offer(0, v));
    for (let j = 0; j < 4; j++) {
      const inBand = ordered.filter((v) => bands.bandOf(v, max) === j).length;
      const got = bands.band(0, j);
      assert.equal(got.length, Math.min(3, inBand));
      assert.ok(got.every((e) => bands.bandOf(e.act, Math.fround(max)) === j));
    }
  });

  it('stops when cancelled', async () => {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(
      collectFeatures(model, sae, SAMPLES, { contextSize: CTX, signal: controller.signal }),
      CancelledError,
    );
  });

  it('loupe dashboards and loupe feature drive it from the command line', function () {
    const cli = path.join(ROOT, 'dist', 'cli.js');
    if (!fs.existsSync(cli)) this.skip(); // built by the test command before mocha runs
    const out = path.join(tempDir(), 'db');
    const env = { ...process.env, LOUPE_CACHE_DIR: cache };
    const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env });
    const built = run([
      'dashboards',
      '--model',
      path.join(FIXTURES, 'gpt2'),
      '--sae',
      saeDir,
      '--corpus',
      SAMPLES,
      '--tokens',
      '1000',
      '--context',
      String(CTX),
      '--threads',
      '1',
      '--out',
      out,
    ]);
    assert.equal(built.status, 0, built.stderr);
    const summary = JSON.parse(built.stdout) as { features: number; tokens: number };
    assert.equal(summary.features, sae.config.dSae);
    assert.ok(summary.tokens >= 1000);
    assert.match(built.stderr, /reading the corpus/);
    const one = run(['feature', '--sae', saeDir, '--db', out, '--index', '3', '--json']);
    assert.equal(one.status, 0, one.stderr);
    const d = JSON.parse(one.stdout) as { index: number; top: unknown[] };
    assert.equal(d.index, 3);
    const missing = run(['feature', '--db', out, '--index', '100000']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /^loupe: feature 100000 does not exist/);
  });
});
