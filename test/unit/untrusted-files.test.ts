/**
 * Files someone else wrote (checkpoints, tokenizers, feature databases,
 * training state) and Loupe's own cache on a disk anything can write to:
 * every fault is one line naming the file and what is wrong, nothing
 * overflows the stack or inflates without bound, and a damaged cache is
 * rebuilt rather than trusted.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { openCheckpoint } from '../../src/engine/checkpoint';
import { LoupeError } from '../../src/engine/errors';
import { FeatureDatabase } from '../../src/engine/features/database';
import { HookedModel } from '../../src/engine/model';
import { SafetensorsFile } from '../../src/engine/safetensors';
import { TunedLens } from '../../src/engine/lens/tunedLens';
import { loadProbe } from '../../src/engine/probes/store';
import { readTrainingCheckpoint } from '../../src/engine/sae/trainer';
import { JSON_KINDS, checkJsonDepth, gunzipBounded, readJsonFile } from '../../src/engine/untrustedJson';
import { arrayOf, nonNegInt, object } from '../../src/shared/schema';
import { maxAbsDiff, tempDir, writeByteLevelTokenizer, writeTinyGpt2 } from './helpers';

function loupeError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof LoupeError, `expected a LoupeError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), 'the message is one line');
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

async function rejectsLoupe(p: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof LoupeError, `expected a LoupeError, got ${String(err)}`);
    for (const re of patterns) assert.match(err.message, re);
    return true;
  });
}

/** A safetensors file from a header object and a data section. */
function writeRawSafetensors(file: string, header: unknown, data: Buffer): void {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, data]));
}

describe('untrusted JSON', () => {
  let dir: string;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('refuses nesting 200k deep with one line, before the parser sees it', () => {
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    loupeError(() => checkJsonDepth(deep, 'deep.json', 'config'), /deep\.json/, /nested more than 64/);
    // Brackets inside strings, escaped quotes included, are text, not nesting.
    checkJsonDepth(JSON.stringify({ s: '['.repeat(1000) + '\\"[[[' }), 'ok.json', 'config');
  });

  it("names the file and the field: 'features[3].index' must be an integer ≥ 0, got null", () => {
    const file = path.join(dir, 'index.json');
    fs.writeFileSync(file, JSON.stringify({ features: [0, 1, 2, null].map((index) => ({ index })) }));
    const schema = object({ features: arrayOf(object({ index: nonNegInt })) });
    loupeError(
      () => readJsonFile(file, JSON_KINDS.featureIndex, schema),
      /index\.json: 'features\[3\]\.index' must be an integer ≥ 0, got null/,
    );
    fs.writeFileSync(file, JSON.stringify({}));
    loupeError(() => readJsonFile(file, JSON_KINDS.featureIndex, schema), /'features' is missing/);
  });

  it('inflates a gzip bomb only up to the cap, then refuses it', () => {
    const bomb = zlib.gzipSync(Buffer.alloc(256 * 1024 * 1024));
    assert.ok(bomb.length < 1024 * 1024, 'the bomb is small on disk');
    const before = process.memoryUsage().arrayBuffers;
    loupeError(
      () => gunzipBounded(bomb, 'shard.json.gz', JSON_KINDS.featureShard, 4 * 1024 * 1024),
      /shard\.json\.gz/,
      /inflates to more than 4\.0 MiB/,
    );
    assert.ok(
      process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024,
      'nothing near 256 MiB was kept',
    );
    loupeError(
      () => gunzipBounded(bomb.subarray(0, 100), 'cut.json.gz', JSON_KINDS.featureShard, 1024),
      /cut\.json\.gz/,
    );
  });
});

describe('safetensors and shards from elsewhere', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
    writeTinyGpt2(dir);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads zero-size tensors at any offset, the same offset as another tensor included', () => {
    const file = path.join(dir, 'zero.safetensors');
    writeRawSafetensors(
      file,
      {
        empty: { dtype: 'F32', shape: [0, 4], data_offsets: [0, 0] },
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        mid: { dtype: 'F16', shape: [3, 0], data_offsets: [4, 4] },
        end: { dtype: 'F32', shape: [0], data_offsets: [8, 8] },
      },
      Buffer.alloc(8),
    );
    const st = SafetensorsFile.open(file);
    assert.deepEqual(st.readF32('empty'), new Float32Array(0));
    assert.deepEqual(st.readF32('a'), new Float32Array(2));
    // Real overlaps are still refused.
    writeRawSafetensors(
      file,
      {
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
      },
      Buffer.alloc(8),
    );
    loupeError(() => SafetensorsFile.open(file), /zero\.safetensors/, /overlap/);
  });

  it('names a FIFO, a folder and a looping symlink given as a weights file, without hanging', () => {
    const weights = path.join(dir, 'model.safetensors');
    fs.rmSync(weights);
    execFileSync('mkfifo', [weights]);
    loupeError(() => openCheckpoint(dir), /model\.safetensors/, /not a regular file/);
    fs.rmSync(weights);
    fs.mkdirSync(weights);
    loupeError(() => openCheckpoint(dir), /model\.safetensors/, /is a folder/);
    fs.rmSync(weights, { recursive: true });
    fs.symlinkSync('model.safetensors', weights);
    loupeError(() => openCheckpoint(dir), /model\.safetensors/, /symbolic link that loops/);
  });

  it('refuses shard names that are not file names beside the index, one line each', () => {
    const weights = path.join(dir, 'model.safetensors');
    const names = [...SafetensorsFile.open(weights).tensors.keys()];
    fs.renameSync(weights, path.join(dir, 'shard-1.safetensors'));
    const index = path.join(dir, 'model.safetensors.index.json');
    const mapTo = (shard: unknown): void =>
      fs.writeFileSync(
        index,
        JSON.stringify({ weight_map: Object.fromEntries(names.map((n) => [n, shard])) }),
      );
    mapTo('shard-1.safetensors');
    assert.equal(openCheckpoint(dir).weights.names.size, names.length);
    for (const bad of ['.', '..', '/etc/passwd', '../shard-1.safetensors', 'sub/shard.safetensors', '']) {
      mapTo(bad);
      loupeError(() => openCheckpoint(dir), /model\.safetensors\.index\.json/, /not a file name/);
    }
    mapTo(3);
    loupeError(() => openCheckpoint(dir), /index\.json: 'weight_map\[".*"\]' must be a string, got 3/);
    fs.mkdirSync(path.join(dir, 'folder.safetensors'));
    mapTo('folder.safetensors');
    loupeError(() => openCheckpoint(dir), /folder\.safetensors/, /is a folder/);
    mapTo('gone.safetensors');
    loupeError(() => openCheckpoint(dir), /shard 'gone\.safetensors' is listed but missing/);
    fs.symlinkSync('loop.safetensors', path.join(dir, 'loop.safetensors'));
    mapTo('loop.safetensors');
    loupeError(() => openCheckpoint(dir), /loop\.safetensors/, /symbolic link that loops/);
  });

  it('refuses a tokenizer id at or past vocab_size at load, naming tokenizer.json and the id', async () => {
    const small = tempDir();
    try {
      writeTinyGpt2(small, 1, {}, 300);
      writeByteLevelTokenizer(small);
      const ok = await HookedModel.open(small, { cacheDir: path.join(small, 'cache'), threads: 1 });
      await ok.dispose();
      writeTinyGpt2(small, 1, {}, 200); // 262 tokens in the tokenizer, 200 rows in the embedding
      await rejectsLoupe(
        HookedModel.open(small, { cacheDir: path.join(small, 'cache'), threads: 1 }),
        /tokenizer\.json: token .* has id 2\d\d, but the model's vocab_size is 200/,
      );
    } finally {
      fs.rmSync(small, { recursive: true, force: true });
    }
  });
});

describe('a damaged compile cache', () => {
  let dir: string;
  let cacheDir: string;
  let notices: string[];
  const ids = [[1, 5, 7, 2, 9]];
  beforeEach(() => {
    dir = tempDir();
    cacheDir = path.join(dir, 'cache');
    writeTinyGpt2(path.join(dir, 'model'));
    notices = [];
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function logits(): Promise<Float32Array> {
    const model = await HookedModel.open(path.join(dir, 'model'), {
      cacheDir,
      threads: 1,
      onNotice: (line) => notices.push(line),
    });
    try {
      return (await model.run(ids))[0].logits.data as Float32Array;
    } finally {
      await model.dispose();
    }
  }
  const compiledDir = (): string => {
    const root = path.join(cacheDir, 'compiled');
    return path.join(root, fs.readdirSync(root)[0]);
  };

  for (const [what, damage] of [
    ['a truncated weights.bin', (d: string) => fs.truncateSync(path.join(d, 'weights.bin'), 100)],
    ['an empty manifest', (d: string) => fs.writeFileSync(path.join(d, 'manifest.json'), '')],
    [
      'a manifest with a tensor past the end',
      (d: string) => {
        const m = JSON.parse(fs.readFileSync(path.join(d, 'manifest.json'), 'utf8')) as {
          weights: Record<string, { offset: number }>;
        };
        Object.values(m.weights)[0].offset = 1e9;
        fs.writeFileSync(path.join(d, 'manifest.json'), JSON.stringify(m));
      },
    ],
    [
      'weights.bin overwritten at its end',
      (d: string) => {
        const file = path.join(d, 'weights.bin');
        const fd = fs.openSync(file, 'r+');
        fs.writeSync(fd, Buffer.alloc(16, 0xff), 0, 16, fs.statSync(file).size - 16);
        fs.closeSync(fd);
      },
    ],
  ] as const) {
    it(`rebuilds after ${what}, says so once, and gives the same logits`, async () => {
      const clean = await logits();
      assert.deepEqual(notices, []);
      damage(compiledDir());
      const again = await logits();
      assert.equal(notices.length, 1, notices.join('\n'));
      assert.match(notices[0], /compiled-model cache is damaged .*; rebuilding it/);
      assert.equal(maxAbsDiff(clean, again), 0);
      await logits();
      assert.equal(notices.length, 1, 'the rebuilt cache is trusted');
    });
  }

  it('rewrites a garbled graph and a fingerprint memo of the wrong types', async () => {
    const clean = await logits();
    for (const f of fs.readdirSync(compiledDir()).filter((n) => n.endsWith('.onnx'))) {
      fs.writeFileSync(path.join(compiledDir(), f), 'not a graph');
    }
    fs.writeFileSync(path.join(cacheDir, 'fingerprints.json'), JSON.stringify({ a: 3, b: null }));
    const again = await logits();
    assert.equal(maxAbsDiff(clean, again), 0);
    assert.ok(
      notices.some((n) => /fingerprints\.json: .*must be a SHA-256 hex digest, got 3.*rebuilt/.test(n)),
    );
    const memo = JSON.parse(fs.readFileSync(path.join(cacheDir, 'fingerprints.json'), 'utf8')) as object;
    assert.ok(Object.values(memo).every((v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v)));
  });
});

describe('damaged state and database files', () => {
  let dir: string;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("names a training checkpoint's state.json and its field", () => {
    fs.mkdirSync(path.join(dir, 'checkpoint'));
    const file = path.join(dir, 'checkpoint', 'state.json');
    fs.writeFileSync(file, JSON.stringify({ step: 'three' }));
    loupeError(() => readTrainingCheckpoint(dir), /state\.json: 'step' must be an integer ≥ 0, got "three"/);
    fs.writeFileSync(file, '{"step": 3,');
    loupeError(() => readTrainingCheckpoint(dir), /state\.json: the training state is not valid JSON/);
  });

  it("names a probe.json's field and a tuned lens config's", () => {
    const file = path.join(dir, 'probe.json');
    const hook = { hook: 'blocks.0.hook_resid_post', layer: 0, width: 16, accuracy: 'high' };
    const meta = {
      format: 'loupe-probe',
      version: 1,
      model: { name: 'm', modelType: 'gpt2', nLayers: 2, dModel: 16, dVocab: 40 },
      dataset: 'labels.jsonl',
      labels: ['no', 'yes'],
      counts: { no: 3, yes: 4 },
      split: { trainDocuments: 1, testDocuments: 1, trainExamples: 5, testExamples: 2 },
      options: { l2: 1, testFraction: 0.2, seed: 1, control: true },
      hooks: [hook],
      seconds: 1,
    };
    fs.writeFileSync(file, JSON.stringify(meta));
    loupeError(
      () => loadProbe(dir),
      /probe\.json: 'hooks\[0\]\.accuracy' must be a finite number, got "high"/,
    );
    fs.writeFileSync(file, JSON.stringify({ ...meta, labels: 'no,yes' }));
    loupeError(() => loadProbe(dir), /probe\.json: 'labels' must be an array, got "no,yes"/);
    fs.writeFileSync(path.join(dir, 'params.safetensors'), '');
    fs.writeFileSync(path.join(dir, 'config.json'), `{"d_model": ${'['.repeat(100_000)}`);
    loupeError(() => TunedLens.load(dir), /config\.json: the lens config is nested more than 64 levels deep/);
  });

  it("names a dashboard shard's fault and refuses a gzip bomb in its place", () => {
    const db = path.join(dir, 'features');
    fs.cpSync(path.join('models', 'default-sae', 'features'), db, { recursive: true });
    const shard = path.join(db, 'shards', '00000.json.gz');
    const json = JSON.parse(zlib.gunzipSync(fs.readFileSync(shard)).toString()) as {
      dashboards: { index: number | null }[];
    };
    json.dashboards[3].index = null;
    fs.writeFileSync(shard, zlib.gzipSync(JSON.stringify(json)));
    loupeError(
      () => FeatureDatabase.open(db).dashboard(3),
      /00000\.json\.gz: 'dashboards\[3\]\.index' must be an integer ≥ 0, got null; rebuild the database/,
    );
    fs.writeFileSync(shard, zlib.gzipSync(Buffer.alloc(512 * 1024 * 1024, 0x20)));
    loupeError(() => FeatureDatabase.open(db).dashboard(0), /00000\.json\.gz/, /inflates to more than/);
    const index = path.join(db, 'index.json');
    const idx = JSON.parse(fs.readFileSync(index, 'utf8')) as { meta: { dSae: unknown } };
    idx.meta.dSae = 'many';
    fs.writeFileSync(index, JSON.stringify(idx));
    loupeError(
      () => FeatureDatabase.open(db),
      /index\.json: 'meta\.dSae' must be an integer ≥ 0, got "many"/,
    );
  });
});
