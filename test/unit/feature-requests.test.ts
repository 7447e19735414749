/**
 * The engine process's feature-database requests (the Feature Browser and the
 * Cluster Map), end to end through the extension's client: a clear error
 * while the SAE has no database; a database written beside the loaded SAE
 * afterwards (as the dashboards job does from another process) is picked up
 * without a reload, and again when it is rebuilt; lists, searches, sorts and
 * pages against expectations computed here from the written columns; every
 * record of the bundled SAE's real database passes the message schemas; and
 * a context's source is found (or not) on disk as the Feature Browser needs.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DatabaseContents, writeFeatureDatabase } from '../../src/engine/features/database';
import {
  FEATURE_DB_SCHEMA,
  FeatureCluster,
  FeatureContext,
  FeatureDashboard,
  MapPoint,
} from '../../src/engine/features/types';
import { engineMethods } from '../../src/engine/host/protocol';
import { EngineSession } from '../../src/engine/host/session';
import { EngineClient, EngineError, EngineLog } from '../../src/extension/engineClient';
import { isInsideFolder, resolveContextSource } from '../../src/extension/featureBrowserSources';
import { FIXTURES, seededRandom, tempDir, writeRandomSae } from './helpers';

const ROOT = path.join(__dirname, '..', '..');
const WORKER = path.join(ROOT, 'src', 'engine', 'host', 'worker.ts');
const D_SAE = 64;
const WORDS = ['import', 'def', 'self', 'return', '(', 'class', 'for', ' in'];

const quiet: EngineLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** A small database written by hand: every number and label known here, so the engine's answers can be checked. */
function contents(seed: number, labelPrefix = ''): DatabaseContents & { dashboards: FeatureDashboard[] } {
  const rand = seededRandom(seed);
  const dead = Array.from({ length: D_SAE }, (_, i) => i % 9 === 4);
  const live = dead.flatMap((d, i) => (d ? [] : [i]));
  const density = dead.map((d) => (d ? 0 : Math.round((rand() + 0.5) * 1e4) / 1e5));
  const maxAct = dead.map((d) => (d ? 0 : Math.round((rand() + 0.5) * 1e3) / 1e2));
  const meanActive = maxAct.map((m) => Math.round(m * 300) / 1e3);
  const label = dead.map((d, i) => (d ? '' : `${labelPrefix}"${WORDS[i % WORDS.length]}"`));
  const clusterOf = dead.map((d, i) => (d ? -1 : i % 4));
  const clusters: FeatureCluster[] = [0, 1, 2, 3].map((id) => {
    const members = live.filter((i) => clusterOf[i] === id).sort((a, b) => density[b] - density[a] || a - b);
    return { id, label: `cluster ${id}`, size: members.length, members };
  });
  const map: MapPoint[] = live.map((index) => ({ index, x: rand(), y: rand(), cluster: clusterOf[index] }));
  const context = (i: number, act: number): FeatureContext => ({
    source: `src/file${i}.py`,
    act,
    focus: 1,
    tokens: ['a', WORDS[i % WORDS.length], 'b'],
    acts: [0, act, act / 2],
    span: [10 * i + 1, 10 * i + 1 + WORDS[i % WORDS.length].length],
    range: [10 * i, 10 * i + 8],
  });
  const dashboards = Array.from({ length: D_SAE }, (_, i): FeatureDashboard => ({
    index: i,
    dead: dead[i],
    label: {
      text: label[i],
      kind: dead[i] ? 'none' : 'token',
      tokens: dead[i] ? [] : [{ text: WORDS[i % WORDS.length], id: i, share: 0.5, score: 0.25 }],
      coverage: dead[i] ? 0 : 0.5,
    },
    stats: {
      tokens: 1000,
      activeTokens: Math.round(density[i] * 1000),
      density: density[i],
      maxAct: maxAct[i],
      meanActive: meanActive[i],
      mean: meanActive[i] * density[i],
    },
    histogram: dead[i] ? null : { scale: 'log2', binsPerOctave: 8, edges: [1, 2, 4], counts: [3, 1] },
    top: dead[i] ? [] : [context(i, maxAct[i]), context(i + 1, maxAct[i] / 2)],
    bands: dead[i]
      ? []
      : [{ lo: maxAct[i] / 2, hi: maxAct[i], fraction: 1, samples: [context(i + 2, maxAct[i] * 0.75)] }],
    logits: {
      promoted: [{ id: 1, token: ' x', value: 0.5 }],
      suppressed: [{ id: 2, token: ' y', value: -0.5 }],
    },
    similar: [(i + 1) % D_SAE, (i + 7) % D_SAE].map((index, k) => ({ index, cosine: 0.5 - k / 10 })),
    cluster: dead[i] ? null : clusterOf[i],
  }));
  return {
    meta: {
      schema: FEATURE_DB_SCHEMA,
      createdAt: '2025-01-01T00:00:00.000Z',
      model: 'gpt2',
      hook: 'blocks.0.hook_resid_post',
      dSae: D_SAE,
      dIn: 32,
      corpus: 'corpus',
      tokens: 1000,
      documents: 3,
      contextSize: 24,
      liveFeatures: live.length,
      options: {},
      logitsNote: null,
      clusterNote: 'by hand',
      seconds: {},
    },
    features: {
      label,
      dead,
      density,
      maxAct,
      meanActive,
      cluster: clusterOf,
      tokens: dead.map((d, i) => (d ? [] : [WORDS[i % WORDS.length]])),
    },
    clusters,
    map,
    dashboard: (i) => dashboards[i],
    dashboards,
  };
}

describe('feature database requests', function () {
  this.timeout(120_000);
  let dir: string;
  let saeDir: string;
  let client: EngineClient;

  before(async () => {
    dir = tempDir();
    saeDir = path.join(dir, 'sae');
    writeRandomSae(saeDir, { dIn: 32, dSae: D_SAE, hook: 'blocks.0.hook_resid_post', contextSize: 24 });
    client = new EngineClient({ workerFile: WORKER, execArgv: ['--import', 'tsx'], log: quiet });
    const loaded = await client.request('load', {
      model: path.join(FIXTURES, 'gpt2'),
      sae: saeDir,
      threads: 1,
      cacheDir: path.join(dir, 'cache'),
    });
    assert.equal(loaded.sae?.hasFeatureDatabase, false);
  });
  after(() => {
    client.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('says how to build a database while the SAE has none', async () => {
    for (const request of [
      client.request('featureDatabase', {}),
      client.request('featureList', { query: '', sort: 'index', offset: 0, limit: 5, includeDead: true }),
      client.request('featureDashboard', { feature: 1 }),
      client.request('clusterMap', {}),
    ]) {
      await assert.rejects(request, (err: EngineError) => {
        assert.match(
          err.message,
          /^the SAE sae has no feature database yet; run 'Loupe: Compute Feature Dashboards for the Workspace'/,
        );
        return true;
      });
    }
  });

  it('opens a database built after the load, lists, searches, sorts and pages it', async () => {
    const db = contents(1);
    writeFeatureDatabase(path.join(saeDir, 'features'), db);
    const info = await client.request('featureDatabase', {});
    assert.equal(info.sae, 'sae');
    assert.equal(info.liveFeatures, db.meta.liveFeatures);
    assert.equal(info.clusters, 4);
    assert.equal(info.corpus, 'corpus');
    const { label, dead, density, maxAct } = db.features;
    const all = Array.from({ length: D_SAE }, (_, i) => i);
    const live = all.filter((i) => !dead[i]);

    // Everything, by density, in pages; dead features left out on request.
    const page = (offset: number) =>
      client.request('featureList', { query: '', sort: 'density', offset, limit: 10, includeDead: false });
    const byDensity = [...live].sort((a, b) => density[b] - density[a] || a - b);
    const first = await page(0);
    const third = await page(20);
    assert.equal(first.total, live.length);
    assert.deepEqual(
      first.features.map((f) => f.index),
      byDensity.slice(0, 10),
    );
    assert.deepEqual(
      third.features.map((f) => f.index),
      byDensity.slice(20, 30),
    );
    assert.deepEqual(third.features[0], {
      index: byDensity[20],
      label: label[byDensity[20]],
      dead: false,
      density: density[byDensity[20]],
      maxAct: maxAct[byDensity[20]],
      meanActive: db.features.meanActive[byDensity[20]],
      cluster: db.features.cluster[byDensity[20]],
    });
    const withDead = await client.request('featureList', {
      query: '',
      sort: 'relevance',
      offset: D_SAE - 3,
      limit: 10,
      includeDead: true,
    });
    assert.equal(withDead.total, D_SAE);
    assert.deepEqual(
      withDead.features.map((f) => f.index),
      [D_SAE - 3, D_SAE - 2, D_SAE - 1],
    );

    // A search: 'def' is the label of every 8th feature (from 1); by relevance the densest first, or by a column.
    const defs = live.filter((i) => i % WORDS.length === 1);
    const search = (sort: 'relevance' | 'maxAct' | 'index', offset = 0) =>
      client.request('featureList', { query: ' DEF ', sort, offset, limit: 3, includeDead: true });
    const relevance = await search('relevance');
    assert.equal(relevance.total, defs.length);
    assert.deepEqual(
      relevance.features.map((f) => f.index),
      [...defs].sort((a, b) => density[b] - density[a] || a - b).slice(0, 3),
    );
    assert.deepEqual(
      (await search('maxAct', 3)).features.map((f) => f.index),
      [...defs].sort((a, b) => maxAct[b] - maxAct[a] || a - b).slice(3, 6),
    );
    assert.deepEqual(
      (await search('index')).features.map((f) => f.index),
      defs.slice(0, 3),
    );
    // By index: that feature first.
    const byIndex = await client.request('featureList', {
      query: '#42',
      sort: 'relevance',
      offset: 0,
      limit: 5,
      includeDead: true,
    });
    assert.equal(byIndex.features[0].index, 42);
    const none = await client.request('featureList', {
      query: 'no such token',
      sort: 'density',
      offset: 0,
      limit: 5,
      includeDead: true,
    });
    assert.deepEqual(none, { total: 0, offset: 0, features: [] });
  });

  it('answers a dashboard with its similar features and cluster, and the map with its labels', async () => {
    const db = contents(1);
    const i = 10;
    const r = await client.request('featureDashboard', { feature: i });
    assert.deepEqual(r.dashboard, db.dashboards[i]);
    assert.deepEqual(
      r.similar.map((s) => [s.index, s.label]),
      [11, 17].map((j) => [j, db.features.label[j]]),
    );
    const cluster = db.clusters.find((c) => c.id === db.features.cluster[i])!;
    assert.deepEqual(r.cluster, { id: cluster.id, label: cluster.label, size: cluster.size });
    const deadOne = await client.request('featureDashboard', { feature: 4 });
    assert.equal(deadOne.dashboard.dead, true);
    assert.equal(deadOne.cluster, null);
    await assert.rejects(client.request('featureDashboard', { feature: D_SAE }), /feature 64 does not exist/);

    const map = await client.request('clusterMap', {});
    assert.deepEqual(
      map.points.index,
      db.map.map((p) => p.index),
    );
    assert.deepEqual(
      map.points.x,
      db.map.map((p) => p.x),
    );
    assert.deepEqual(
      map.points.cluster,
      db.map.map((p) => p.cluster),
    );
    assert.deepEqual(
      map.points.label,
      db.map.map((p) => db.features.label[p.index]),
    );
    assert.deepEqual(map.clusters, db.clusters);
  });

  it('follows a rebuilt database, and so do the labels the inspector shows', async () => {
    writeFeatureDatabase(path.join(saeDir, 'features'), contents(2, 'rebuilt '));
    const list = await client.request('featureList', {
      query: 'rebuilt',
      sort: 'index',
      offset: 0,
      limit: 2,
      includeDead: false,
    });
    assert.deepEqual(
      list.features.map((f) => f.label),
      ['rebuilt "import"', 'rebuilt "def"'],
    );
    await client.request('tokenize', { document: 'a', version: 1, text: 'def f(x): return x' });
    await client.request('analyze', { document: 'a', version: 1 });
    const { features } = await client.request('fileFeatures', { document: 'a', version: 1, limit: 5 });
    const labels = features.flatMap((f) => (f.label === null ? [] : [f.label]));
    assert.ok(labels.length > 0, 'some live feature fires in the text');
    for (const l of labels) assert.match(l, /^rebuilt "/);
    // A broken rebuild is reported as the database's own error.
    fs.writeFileSync(path.join(saeDir, 'features', 'index.json'), '{"schema": 999}');
    await assert.rejects(client.request('featureDatabase', {}), /schema 999.*rebuild/);
  });
});

describe('the bundled SAE database against the message schemas', function () {
  this.timeout(120_000);
  const session = new EngineSession();
  let cache: string;

  before(async () => {
    cache = tempDir();
    await session.load(
      {
        model: path.join(ROOT, 'models', 'default'),
        sae: path.join(ROOT, 'models', 'default-sae'),
        threads: 1,
        cacheDir: cache,
      },
      () => undefined,
    );
  });
  after(async () => {
    await session.unload();
    fs.rmSync(cache, { recursive: true, force: true });
  });

  it('every dashboard, the lists, the clusters and the map pass the schemas the host checks', () => {
    const info = engineMethods.featureDatabase.result.parse(session.featureDatabase());
    assert.equal(info.dSae, 2048);
    for (let i = 0; i < info.dSae; i++) {
      const r = engineMethods.featureDashboard.result.parse(
        session.featureDashboard({ feature: i }),
        `#${i}`,
      );
      assert.equal(r.dashboard.index, i);
    }
    const list = engineMethods.featureList.result.parse(
      session.featureList({ query: 'import', sort: 'maxAct', offset: 0, limit: 50, includeDead: false }),
    );
    assert.ok(list.total > 0, 'some feature of the bundled SAE is about "import"');
    assert.ok(list.features.every((f, k) => k === 0 || f.maxAct <= list.features[k - 1].maxAct));
    const map = engineMethods.clusterMap.result.parse(session.clusterMap());
    assert.equal(map.points.index.length, info.liveFeatures);
    assert.equal(map.clusters.length, info.clusters);
  });
});

describe("a dashboard context's source on this machine", () => {
  let dir: string;
  before(() => {
    dir = tempDir();
    fs.mkdirSync(path.join(dir, 'ws', 'corpus', 'src'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'ws', 'corpus', 'src', 'a.py'), 'import os\n');
    fs.writeFileSync(path.join(dir, 'ws', 'corpus', 'notes.txt'), 'text');
    fs.writeFileSync(path.join(dir, 'ws', 'data.jsonl'), '{"text": "x"}\n');
    fs.writeFileSync(path.join(dir, 'outside.py'), '');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('finds a file of a folder corpus, relative to the first base that holds the corpus', () => {
    const bases = [path.join(dir, 'elsewhere'), path.join(dir, 'ws')];
    assert.deepEqual(resolveContextSource('corpus', path.join('src', 'a.py'), bases, [dir]), {
      kind: 'file',
      file: path.join(dir, 'ws', 'corpus', 'src', 'a.py'),
    });
    assert.deepEqual(resolveContextSource(path.join(dir, 'ws', 'corpus'), 'notes.txt', [], [dir]), {
      kind: 'file',
      file: path.join(dir, 'ws', 'corpus', 'notes.txt'),
    });
  });

  it('finds the file of a single-file corpus, and says when a file or corpus is not here', () => {
    const single = path.join(dir, 'ws', 'corpus', 'notes.txt');
    assert.deepEqual(resolveContextSource(single, 'notes.txt', [], [dir]), { kind: 'file', file: single });
    assert.deepEqual(resolveContextSource('corpus', 'gone.py', [path.join(dir, 'ws')], [dir]), {
      kind: 'missing',
    });
    assert.deepEqual(resolveContextSource('no-corpus', 'a.py', [path.join(dir, 'ws')], [dir]), {
      kind: 'missing',
    });
    // A source that climbs out of its corpus is not where a context came from.
    assert.deepEqual(
      resolveContextSource('corpus', path.join('..', '..', 'outside.py'), [path.join(dir, 'ws')], [dir]),
      {
        kind: 'missing',
      },
    );
  });

  it('opens nothing outside the workspace and the database folder, whatever the database says', () => {
    const ws = path.join(dir, 'ws');
    // A corpus of '/' reaches every file on the machine; only what lies inside the allowed folders opens.
    assert.deepEqual(resolveContextSource('/', path.join(dir, 'outside.py').slice(1), [], [ws]), {
      kind: 'outside',
      file: path.join(dir, 'outside.py'),
    });
    assert.deepEqual(resolveContextSource('/', path.join(ws, 'corpus', 'notes.txt').slice(1), [], [ws]), {
      kind: 'file',
      file: path.join(ws, 'corpus', 'notes.txt'),
    });
    // A symlink inside the workspace that points out of it is outside too.
    fs.symlinkSync(path.join(dir, 'outside.py'), path.join(ws, 'corpus', 'link.py'));
    assert.deepEqual(resolveContextSource('corpus', 'link.py', [ws], [ws]), {
      kind: 'outside',
      file: path.join(ws, 'corpus', 'link.py'),
    });
    assert.equal(isInsideFolder(path.join(ws, 'corpus', 'link.py'), ws), false);
    assert.equal(isInsideFolder(path.join(ws, 'corpus', 'notes.txt'), ws), true);
    assert.equal(isInsideFolder(ws, ws), false, 'the folder itself is not a file inside it');
    assert.equal(isInsideFolder(path.join(ws, 'gone.txt'), ws), false);
  });

  it('names a JSONL record by file and line, with the file when it is here', () => {
    assert.deepEqual(resolveContextSource('data.jsonl', 'data.jsonl:7', [path.join(dir, 'ws')], [dir]), {
      kind: 'record',
      name: 'data.jsonl',
      line: 7,
      file: path.join(dir, 'ws', 'data.jsonl'),
    });
    assert.deepEqual(resolveContextSource('.cache/heldout.jsonl', 'heldout.jsonl:2', [dir], [dir]), {
      kind: 'record',
      name: 'heldout.jsonl',
      line: 2,
      file: null,
    });
  });
});
