/**
 * Turns a checkpoint into the engine's on-disk form: one f32 weights file in
 * the engine's layouts plus a manifest, in a cache folder keyed by the
 * checkpoint's content (config and weight bytes), so the second open of the
 * same checkpoint skips all of it. Weights stream through one tensor at a time,
 * so memory stays near the largest tensor, not the model. Graph variants are
 * written next to the weights and reuse them.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Checkpoint } from './checkpoint';
import { LoupeError } from './errors';
import { invFreqWeight, inverseFrequencies, rotaryTables } from './families/rope';
import { HostTensor } from './families/spec';
import { ExternalTensor } from './graph/builder';
import { assertFinite } from './safetensors';

/** Bump when the weights layout or graphs change, so old caches are not reused. */
const FORMAT_VERSION = 4;
export const WEIGHTS_FILE = 'weights.bin';

export interface CompiledModel {
  readonly dir: string;
  readonly key: string;
  readonly weights: ReadonlyMap<string, ExternalTensor>;
}

export interface CompileProgress {
  readonly stage: 'fingerprint' | 'weights';
  readonly done: number;
  readonly total: number;
}

export function defaultCacheDir(): string {
  return process.env.LOUPE_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'loupe');
}

export function compileCheckpoint(
  ckpt: Checkpoint,
  cacheDir: string = defaultCacheDir(),
  onProgress?: (p: CompileProgress) => void,
): CompiledModel {
  checkLayerCount(ckpt);
  const recipes = ckpt.family.weightRecipes(ckpt.spec, ckpt.weights.names);
  checkSources(ckpt, recipes);
  const key = contentKey(ckpt, cacheDir, onProgress);
  const dir = path.join(cacheDir, 'compiled', key);
  const manifestFile = path.join(dir, 'manifest.json');
  if (fs.existsSync(manifestFile)) {
    try {
      return { dir, key, weights: readManifest(manifestFile) };
    } catch {
      fs.rmSync(dir, { recursive: true, force: true }); // damaged cache: rebuild below
    }
  }
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  fs.mkdirSync(tmp, { recursive: true });
  try {
    const fd = fs.openSync(path.join(tmp, WEIGHTS_FILE), 'w');
    const manifest: Record<string, ExternalTensor> = {};
    let offset = 0;
    const write = (name: string, t: HostTensor): void => {
      const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      fs.writeSync(fd, bytes);
      manifest[name] = { offset, length: bytes.length, dims: [...t.shape] };
      offset += bytes.length;
    };
    try {
      let done = 0;
      for (const [name, recipe] of recipes) {
        if (recipe.direct) {
          const [source, shape] = recipe.sources[0];
          const length = ckpt.weights.streamF32To(source, fd);
          manifest[name] = { offset, length, dims: [...shape] };
          offset += length;
        } else {
          const t = recipe.make((n) => ckpt.weights.read(n));
          assertFinite(t.data, `${ckpt.dir}: weight '${name}'`);
          write(name, t);
        }
        onProgress?.({ stage: 'weights', done: ++done, total: recipes.size });
      }
      if (ckpt.spec.positional === 'rotary') {
        // The graph turns these into angles at the run's positions, so no table grows with the context.
        const rd = ckpt.spec.rotaryDims;
        rotaryTables(ckpt.spec).tables.forEach((rope, i) =>
          write(invFreqWeight(i), { shape: [rd / 2], data: inverseFrequencies(rope, rd) }),
        );
      }
    } finally {
      fs.closeSync(fd);
    }
    fs.writeFileSync(
      path.join(tmp, 'manifest.json'),
      JSON.stringify({ format: FORMAT_VERSION, weights: manifest }),
    );
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    try {
      fs.renameSync(tmp, dir);
    } catch {
      // Another process finished the same compile first; use its result.
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return { dir, key, weights: readManifest(manifestFile) };
}

/**
 * The config's layer count against the layers the weights hold (`h.L.` or
 * `layers.L.` in every family's tensor names), before any per-layer recipe
 * is made: a config saying 10⁹ layers is one line, not a long wait.
 */
function checkLayerCount(ckpt: Checkpoint): void {
  let held = 0;
  for (const name of ckpt.weights.names) {
    const m = /(?:^|\.)(?:h|layers)\.(\d+)\./.exec(name);
    if (m) held = Math.max(held, Number(m[1]) + 1);
  }
  if (ckpt.spec.nLayers > held) {
    throw new LoupeError(
      `${ckpt.configFile}: '${ckpt.family.layersKey}' is ${ckpt.spec.nLayers} but the weights hold ${held} layers; the config and weights do not match`,
    );
  }
}

function checkSources(ckpt: Checkpoint, recipes: ReturnType<Checkpoint['family']['weightRecipes']>): void {
  for (const recipe of recipes.values()) {
    for (const [name, shape] of recipe.sources) {
      const found = ckpt.weights.info(name);
      if (!found) {
        throw new LoupeError(
          `${ckpt.dir}: the weights lack tensor '${name}', which a ${ckpt.spec.modelType} model with this config needs`,
        );
      }
      const actual = found.info.shape;
      if (actual.length !== shape.length || actual.some((d, i) => d !== shape[i])) {
        throw new LoupeError(
          `${found.file}: tensor '${name}' has shape [${actual.join(', ')}] but config.json implies [${shape.join(', ')}]; the config and weights do not match`,
        );
      }
      if (!['F32', 'F16', 'BF16', 'F64'].includes(found.info.dtype)) {
        throw new LoupeError(
          `${found.file}: tensor '${name}' is ${found.info.dtype}; weights must be F32, F16 or BF16`,
        );
      }
    }
  }
}

function readManifest(file: string): Map<string, ExternalTensor> {
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    format: number;
    weights: Record<string, ExternalTensor>;
  };
  if (json.format !== FORMAT_VERSION) throw new Error('stale cache format');
  return new Map(Object.entries(json.weights));
}

/**
 * A hash of config.json and every weight file's bytes. Hashing a large
 * checkpoint takes seconds, so the result is remembered per file path, size
 * and modification time; a changed file is hashed again.
 */
function contentKey(ckpt: Checkpoint, cacheDir: string, onProgress?: (p: CompileProgress) => void): string {
  const files = [ckpt.configFile, ...ckpt.weights.files.map((f) => f.file)];
  const memoFile = path.join(cacheDir, 'fingerprints.json');
  let memo: Record<string, string> = {};
  try {
    memo = JSON.parse(fs.readFileSync(memoFile, 'utf8')) as Record<string, string>;
  } catch {
    memo = {};
  }
  const outer = crypto.createHash('sha256');
  outer.update(`loupe-format-${FORMAT_VERSION}\n`);
  let changed = false;
  files.forEach((file, i) => {
    const st = fs.statSync(file);
    const stamp = `${path.resolve(file)}|${st.size}|${st.mtimeMs}|${st.ino}`;
    let digest = memo[stamp];
    if (!digest) {
      digest = hashFile(file);
      memo[stamp] = digest;
      changed = true;
    }
    outer.update(`${path.basename(file)}:${digest}\n`);
    onProgress?.({ stage: 'fingerprint', done: i + 1, total: files.length });
  });
  if (changed) {
    try {
      fs.mkdirSync(cacheDir, { recursive: true });
      const tmp = `${memoFile}.tmp-${process.pid}`;
      fs.writeFileSync(tmp, JSON.stringify(memo));
      fs.renameSync(tmp, memoFile);
    } catch {
      // The memo only saves time; failing to write it is harmless.
    }
  }
  return outer.digest('hex').slice(0, 32);
}

function hashFile(file: string): string {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(8 * 1024 * 1024);
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}
