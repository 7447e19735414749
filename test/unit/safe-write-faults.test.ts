/**
 * Every multi-file result, killed between any two of its file operations (or
 * failing at any one of them), loads afterwards as the old result or the new
 * one, never a mix; what the old folder held besides the result survives; no
 * temporary is left once the result has been opened again; and a training run
 * killed anywhere resumes from a checkpoint.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoupeError } from '../../src/engine/errors';
import { FeatureDatabase, writeFeatureDatabase } from '../../src/engine/features/database';
import { FeatureDashboard, FeatureDbMeta } from '../../src/engine/features/types';
import { TunedLens } from '../../src/engine/lens/tunedLens';
import { HookedModel } from '../../src/engine/model';
import { SavedProbe, loadProbe, saveProbe } from '../../src/engine/probes/store';
import { parseSaeConfig } from '../../src/engine/sae/config';
import { Sae, SaeParams, saveSae } from '../../src/engine/sae/sae';
import { readTrainingCheckpoint, trainSae } from '../../src/engine/sae/trainer';
import { FsOps, realFsOps, withFsOps } from '../../src/engine/safeWrite';
import { FIXTURES, probeMetadata, seededRandom, tempDir } from './helpers';

/** What a killed process does next: nothing. */
class Killed extends Error {}

type FaultMode = 'kill' | 'error';

/**
 * File operations that count the calls touching `root` and fail at call
 * number `at`: a kill fails that call and every later one, as a killed
 * process does nothing more; an error fails that call only (a full disk, a
 * permission), and the writer's own clean-up runs.
 */
function faultyOps(root: string, at: number, mode: FaultMode): { ops: FsOps; count: () => number } {
  const real = realFsOps();
  let n = 0;
  let dead = false;
  const step = <A extends unknown[], R>(op: (...args: A) => R, ...paths: string[]) => {
    return (...args: A): R => {
      const touches = paths.some((p) => p.startsWith(root));
      if (touches) {
        if (dead) throw new Killed('killed');
        if (n++ === at) {
          if (mode === 'kill') {
            dead = true;
            throw new Killed('killed');
          }
          throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
        }
      }
      return op(...args);
    };
  };
  // A descriptor stands for the path it was opened on.
  const opened = new Map<number, string>();
  const ops: FsOps = {
    open: (file) => {
      const fd = step(real.open, file)(file);
      opened.set(fd, file);
      return fd;
    },
    write: (fd, bytes) => step(real.write, opened.get(fd) ?? '')(fd, bytes),
    close: (fd) => {
      step(real.close, opened.get(fd) ?? '')(fd);
      opened.delete(fd);
    },
    mkdir: (dir) => step(real.mkdir, dir)(dir),
    rename: (from, to) => step(real.rename, from, to)(from, to),
    remove: (target) => step(real.remove, target)(target),
    link: (from, to) => step(real.link, from, to)(from, to),
    symlink: (linkTarget, at2) => step(real.symlink, at2)(linkTarget, at2),
  };
  return { ops, count: () => n };
}

/** Every path under `dir` (recursively) that is a temporary or a moved-aside copy of a write. */
function leftovers(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (/\.loupe-(new|old)-\d+$/.test(e.name)) found.push(path.join(d, e.name));
      else if (e.isDirectory()) walk(path.join(d, e.name));
    }
  };
  walk(dir);
  return found;
}

type Version = 'old' | 'new';

interface ResultWriter {
  readonly name: string;
  /** Writes version v at `target`. */
  write(target: string, v: Version): void;
  /** Opens the result at `target` and says which version it holds; throws on a mix. */
  read(target: string): Version;
}

function sameArray(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  return a.length === b.length && Array.from(a).every((x, i) => x === b[i]);
}

/** The one version whose every part matches what was read, or an error naming the mix. */
function whichVersion(parts: Record<string, (v: Version) => boolean>): Version {
  for (const v of ['old', 'new'] as const) if (Object.values(parts).every((matches) => matches(v))) return v;
  const seen = Object.entries(parts).map(([k, m]) => `${k}: ${m('old') ? 'old' : m('new') ? 'new' : '?'}`);
  throw new Error(`a mix of versions (${seen.join(', ')})`);
}

// ---- the five multi-file results, each as an old and a new version that differ in every file ----

function saeVersion(v: Version): { params: SaeParams; sparsity: Float32Array; dSae: number } {
  const dIn = 4;
  const dSae = v === 'old' ? 8 : 12;
  const rand = seededRandom(v === 'old' ? 1 : 2);
  const t = (dims: number[]) => ({
    dims,
    data: Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rand()),
  });
  return {
    params: new Map([
      ['W_enc', t([dIn, dSae])],
      ['b_enc', t([dSae])],
      ['W_dec', t([dSae, dIn])],
      ['b_dec', t([dIn])],
    ]),
    sparsity: Float32Array.from({ length: dSae }, (_, i) => -1 - i / 10 - (v === 'old' ? 0 : 0.05)),
    dSae,
  };
}

const saeWriter: ResultWriter = {
  name: 'SAE folder',
  write(target, v) {
    const s = saeVersion(v);
    const config = parseSaeConfig(
      {
        architecture: 'standard',
        d_in: 4,
        d_sae: s.dSae,
        dtype: 'float32',
        apply_b_dec_to_input: false,
        normalize_activations: 'none',
        metadata: { model_name: 'tiny', hook_name: 'blocks.0.hook_resid_post' },
      },
      'cfg.json',
    );
    saveSae(target, { config, params: s.params, sparsity: s.sparsity });
  },
  read(target) {
    const sae = Sae.load(target);
    try {
      return whichVersion({
        'cfg.json': (v) => sae.config.dSae === saeVersion(v).dSae,
        W_enc: (v) => sameArray(sae.params.get('W_enc')!.data, saeVersion(v).params.get('W_enc')!.data),
        sparsity: (v) => sae.sparsity !== null && sameArray(sae.sparsity, saeVersion(v).sparsity),
      });
    } finally {
      sae.dispose();
    }
  },
};

const DB_FEATURES = 40; // three shards of 16

/** The first features of the bundled database: real, complete dashboards that the reader's checks accept. */
let bundledSample: { meta: FeatureDbMeta; dashboards: FeatureDashboard[] } | null = null;
function bundledDashboards(): { meta: FeatureDbMeta; dashboards: FeatureDashboard[] } {
  if (!bundledSample) {
    const dir = path.join(__dirname, '..', '..', 'models', 'default-sae', 'features');
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as {
      meta: FeatureDbMeta;
    };
    const db = FeatureDatabase.open(dir);
    bundledSample = {
      meta: index.meta,
      dashboards: Array.from({ length: DB_FEATURES }, (_, i) => db.dashboard(i)),
    };
  }
  return bundledSample;
}

const databaseWriter: ResultWriter = {
  name: 'feature database',
  write(target, v) {
    const label = (i: number): string => `${v}-${i}`;
    const n = DB_FEATURES;
    const { meta, dashboards } = bundledDashboards();
    writeFeatureDatabase(target, {
      meta: { ...meta, dSae: n, liveFeatures: n, corpus: v },
      features: {
        label: Array.from({ length: n }, (_, i) => label(i)),
        dead: Array.from({ length: n }, () => false),
        density: Array.from({ length: n }, () => 0.1),
        maxAct: Array.from({ length: n }, () => 1),
        meanActive: Array.from({ length: n }, () => 0.5),
        cluster: Array.from({ length: n }, () => -1),
        tokens: Array.from({ length: n }, () => [v]),
      },
      clusters: [],
      map: [],
      dashboard: (i) => ({ ...dashboards[i], index: i, label: { ...dashboards[i].label, text: label(i) } }),
    });
  },
  read(target) {
    const db = FeatureDatabase.open(target);
    return whichVersion({
      'index.json': (v) => db.summary(0).label === `${v}-0`,
      'first shard': (v) => db.dashboard(1).label.text === `${v}-1`,
      'last shard': (v) => db.dashboard(DB_FEATURES - 1).label.text === `${v}-${DB_FEATURES - 1}`,
    });
  },
};

function probeVersion(v: Version): SavedProbe {
  const dim = 6;
  const hook = 'blocks.0.hook_resid_post';
  const meta = probeMetadata({
    dataset: v,
    labels: v === 'old' ? ['no', 'yes'] : ['a', 'b', 'c'],
    hooks: [{ hook, layer: 0, width: dim, accuracy: v === 'old' ? 0.7 : 0.9 }],
    model: { name: 'tiny', modelType: 'gpt2', nLayers: 2, dModel: dim, dVocab: 40 },
  });
  const outputs = v === 'old' ? 1 : 3;
  const weight = Float32Array.from({ length: outputs * dim }, (_, i) => (v === 'old' ? i : -i));
  const bias = Float32Array.from({ length: outputs }, (_, i) => i + 0.5);
  return { dir: null, meta, classifiers: new Map([[hook, { classes: outputs, dim, weight, bias }]]) };
}

const probeWriter: ResultWriter = {
  name: 'probe',
  write: (target, v) => saveProbe(target, probeVersion(v)),
  read(target) {
    const p = loadProbe(target);
    const c = [...p.classifiers.values()][0];
    return whichVersion({
      'probe.json': (v) => p.meta.dataset === v,
      'probe.safetensors': (v) => sameArray(c.weight, [...probeVersion(v).classifiers.values()][0].weight),
    });
  },
};

function lensVersion(v: Version): TunedLens {
  const d = 4;
  const translators = [0, 1].map((l) => ({
    weight: Float32Array.from({ length: d * d }, (_, i) => (v === 'old' ? 1 : -1) * (i + l)),
    bias: Float32Array.from({ length: d }, (_, i) => (v === 'old' ? i : -i)),
  }));
  return new TunedLens(
    {
      base_model_name_or_path: v,
      d_model: d,
      num_hidden_layers: 2,
      bias: true,
      base_model_revision: null,
      unembed_hash: null,
      lens_type: 'linear_tuned_lens',
    },
    translators,
  );
}

const lensWriter: ResultWriter = {
  name: 'tuned lens',
  write: (target, v) => lensVersion(v).save(target),
  read(target) {
    const lens = TunedLens.load(target);
    return whichVersion({
      'config.json': (v) => lens.config.base_model_name_or_path === v,
      'params.safetensors': (v) =>
        sameArray(lens.translators[1].weight, lensVersion(v).translators[1].weight),
    });
  },
};

describe('results written in one step, whichever file operation a kill or an error hits', () => {
  for (const writer of [saeWriter, databaseWriter, probeWriter, lensWriter]) {
    describe(writer.name, () => {
      /** A parent folder holding the old result (with a file of the user's inside) at `target`. */
      const withOld = (): { root: string; target: string } => {
        const root = tempDir();
        const target = path.join(root, 'result');
        writer.write(target, 'old');
        fs.writeFileSync(path.join(target, 'NOTES.md'), 'my notes\n');
        return { root, target };
      };
      const writeWithFault = (root: string, target: string, at: number, mode: FaultMode): number => {
        const fault = faultyOps(root, at, mode);
        try {
          withFsOps(fault.ops, () => writer.write(target, 'new'));
        } catch (err) {
          if (mode === 'kill') assert.ok(err instanceof Killed, `not the kill: ${String(err)}`);
          else {
            assert.ok(err instanceof LoupeError, `not a LoupeError: ${String(err)}`);
            assert.match(err.message, /^\S+: cannot write \(EIO\)$/);
          }
          return -1;
        }
        return fault.count();
      };

      const { root: r0, target: t0 } = withOld();
      const total = writeWithFault(r0, t0, Infinity, 'kill');

      it(`has file operations to interrupt, and writes the new version when none fails`, () => {
        assert.ok(total >= 8, `${total} operations`);
        assert.equal(writer.read(t0), 'new');
        assert.equal(fs.readFileSync(path.join(t0, 'NOTES.md'), 'utf8'), 'my notes\n');
        assert.deepEqual(leftovers(r0), []);
      });

      for (const mode of ['kill', 'error'] as const) {
        it(`${mode} at each operation: the old version or the new one, the user's file kept, no temporaries`, () => {
          const seen = new Set<Version>();
          for (let at = 0; at < total; at++) {
            const { root, target } = withOld();
            assert.equal(
              writeWithFault(root, target, at, mode),
              -1,
              `operation ${at} did not fail the write`,
            );
            if (mode === 'error') assert.deepEqual(leftovers(root), [], `after an error at operation ${at}`);
            // The next open finishes or rolls back what the kill interrupted.
            const v = writer.read(target);
            seen.add(v);
            assert.equal(fs.readFileSync(path.join(target, 'NOTES.md'), 'utf8'), 'my notes\n', `at ${at}`);
            assert.deepEqual(leftovers(root), [], `after reopening, operation ${at}`);
            // And a write after the crash succeeds.
            writer.write(target, 'new');
            assert.equal(writer.read(target), 'new');
          }
          assert.ok(seen.has('old'), 'some failure left the old version');
          if (mode === 'kill') assert.ok(seen.has('new'), 'a kill after the swap keeps the new version');
        });
      }
    });
  }

  describe('training checkpoint and the trained SAE', function () {
    let model: HookedModel;
    before(async () => {
      model = await HookedModel.open(path.join(FIXTURES, 'gpt2'), { cacheDir: tempDir(), threads: 1 });
    });
    after(async () => model?.dispose());

    const options = {
      hook: 'blocks.0.hook_resid_post',
      corpus: path.join(__dirname, '..', '..', 'samples'),
      expansion: 2,
      batchSize: 64,
      trainingTokens: 64 * 6,
      contextSize: 16,
      checkpointEvery: 2,
      threads: 1,
    };

    it('a kill at any operation of a run leaves a checkpoint --resume continues from, or the finished SAE', async () => {
      const clean = tempDir();
      const counted = faultyOps(clean, Infinity, 'kill');
      await withFsOps(counted.ops, () => trainSae(model, { ...options, outDir: path.join(clean, 'run') }));
      const total = counted.count();
      assert.ok(total >= 20, `${total} operations`);
      let resumed = 0;
      for (let at = 0; at < total; at++) {
        const root = tempDir();
        const outDir = path.join(root, 'run');
        await assert.rejects(
          withFsOps(faultyOps(root, at, 'kill').ops, () => trainSae(model, { ...options, outDir })),
          Killed,
          `a kill at operation ${at} of ${total}`,
        );
        const checkpoint = readTrainingCheckpoint(outDir);
        if (checkpoint) {
          assert.ok([2, 4].includes(checkpoint.step), `step ${checkpoint.step} after a kill at ${at}`);
          const result = await trainSae(model, { ...options, outDir, resume: true });
          assert.equal(result.steps, 6);
          resumed++;
        } else if (!fs.existsSync(path.join(outDir, 'cfg.json'))) {
          // Killed before the first checkpoint was in place: nothing to resume, nothing half-written.
          assert.deepEqual(
            (fs.existsSync(outDir) ? fs.readdirSync(outDir) : []).filter((e) => e !== 'training_log.jsonl'),
            [],
            `after a kill at ${at}`,
          );
          continue;
        }
        const sae = Sae.load(outDir);
        assert.equal(sae.config.dSae, options.expansion * model.spec.dModel);
        sae.dispose();
        assert.ok(
          !fs.existsSync(path.join(outDir, 'checkpoint')),
          `a checkpoint beside the SAE, kill at ${at}`,
        );
        assert.deepEqual(leftovers(root), [], `after a kill at ${at}`);
      }
      assert.ok(resumed > 0);
    });
  });
});
