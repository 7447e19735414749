/**
 * Turns a checkpoint into the engine's on-disk form: one f32 weights file in
 * the engine's layouts plus a manifest, in a cache folder keyed by the
 * checkpoint's content (config and weight bytes), so the second open of the
 * same checkpoint skips all of it. Weights stream through one tensor at a time,
 * so memory stays near the largest tensor, not the model. Graph variants are
 * written next to the weights and reuse them.
 *
 * The cache is Loupe's own but lives on a disk anything can write to, so it is
 * checked on every open (the manifest's fields, the weights file's recorded
 * size and a hash of its first and last blocks, each tensor's extent) and a
 * damaged one is deleted and rebuilt, with one notice saying so. The hash
 * covers the ends, where a cut or an interrupted copy shows, not every byte:
 * hashing gigabytes on each open would cost what the cache saves.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Checkpoint } from './checkpoint';
import { arrayOf, nonNegInt, num, object, openObject, recordOf, schemaMatching, str } from '../shared/schema';
import { LoupeError, errorMessage } from './errors';
import { invFreqWeight, inverseFrequencies, rotaryTables } from './families/rope';
import { HostTensor } from './families/spec';
import { ExternalTensor } from './graph/builder';
import { isPresent, regularFileSize } from './inputFiles';
import { assertFinite } from './safetensors';
import { writeFileAtomic, writeResultFolder } from './safeWrite';
import { JSON_KINDS, readJsonFile } from './untrustedJson';

/** Bump when the weights layout or graphs change, so old caches are not reused. */
const FORMAT_VERSION = 5;
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

/** Where the engine says something worth knowing that is not an error (a damaged cache rebuilt). */
export type NoticeSink = (line: string) => void;

export const stderrNotice: NoticeSink = (line) => process.stderr.write(`loupe: ${line}\n`);

export function compileCheckpoint(
  ckpt: Checkpoint,
  cacheDir: string = defaultCacheDir(),
  onProgress?: (p: CompileProgress) => void,
  onNotice: NoticeSink = stderrNotice,
): CompiledModel {
  checkLayerCount(ckpt);
  const recipes = ckpt.family.weightRecipes(ckpt.spec, ckpt.weights.names);
  checkSources(ckpt, recipes);
  const key = contentKey(ckpt, cacheDir, onNotice, onProgress);
  const dir = path.join(cacheDir, 'compiled', key);
  const manifestFile = path.join(dir, 'manifest.json');
  const names = [
    ...recipes.keys(),
    ...(ckpt.spec.positional === 'rotary'
      ? rotaryTables(ckpt.spec).tables.map((_, i) => invFreqWeight(i))
      : []),
  ];
  if (isPresent(dir)) {
    const cached = openCachedWeights(dir, names);
    if (typeof cached !== 'string') return { dir, key, weights: cached };
    onNotice(`${dir}: the compiled-model cache is damaged (${cached}); rebuilding it`);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // Written whole beside its place and swapped in (safeWrite.ts): a kill never leaves half a cache entry.
  writeResultFolder(dir, 'cache', (out) => {
    const manifest: Record<string, ExternalTensor> = {};
    let offset = 0;
    out.file(WEIGHTS_FILE, (sink) => {
      const write = (name: string, t: HostTensor): void => {
        const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
        sink.write(bytes);
        manifest[name] = { offset, length: bytes.length, dims: [...t.shape] };
        offset += bytes.length;
      };
      let done = 0;
      for (const [name, recipe] of recipes) {
        if (recipe.direct) {
          const [source, shape] = recipe.sources[0];
          const length = ckpt.weights.streamF32To(source, sink.fd);
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
    });
    const check = { weightsBytes: offset, weightsEnds: edgeDigest(path.join(out.dir, WEIGHTS_FILE), offset) };
    out.file('manifest.json', JSON.stringify({ format: FORMAT_VERSION, ...check, weights: manifest }));
  });
  const built = openCachedWeights(dir, names);
  if (typeof built === 'string')
    throw new LoupeError(`${manifestFile}: the cache just written is unreadable (${built})`);
  return { dir, key, weights: built };
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

const manifestSchema = openObject({
  format: num,
  weightsBytes: nonNegInt,
  weightsEnds: str,
  weights: recordOf(object({ offset: nonNegInt, length: nonNegInt, dims: arrayOf(nonNegInt, 16) })),
});

/** Bytes hashed at each end of weights.bin. */
const EDGE_BYTES = 1024 * 1024;

/** A hash of a file's size and its first and last blocks: what a cut, an empty or a swapped file changes. */
function edgeDigest(file: string, size: number): string {
  const hash = crypto.createHash('sha256').update(`${size}\n`);
  const blocks =
    size <= 2 * EDGE_BYTES
      ? [[0, size]]
      : [
          [0, EDGE_BYTES],
          [size - EDGE_BYTES, EDGE_BYTES],
        ];
  const fd = fs.openSync(file, 'r');
  try {
    for (const [at, length] of blocks) {
      const buf = Buffer.alloc(length);
      const n = fs.readSync(fd, buf, 0, length, at);
      hash.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** The cached tensors' places in weights.bin, or why the cache cannot be trusted. */
function openCachedWeights(dir: string, names: readonly string[]): Map<string, ExternalTensor> | string {
  try {
    const manifest = readJsonFile(path.join(dir, 'manifest.json'), JSON_KINDS.cache, manifestSchema);
    if (manifest.format !== FORMAT_VERSION) return `format ${manifest.format}, not ${FORMAT_VERSION}`;
    const weightsFile = path.join(dir, WEIGHTS_FILE);
    const size = regularFileSize(weightsFile, WEIGHTS_FILE);
    if (size !== manifest.weightsBytes)
      return `${WEIGHTS_FILE} is ${size} bytes, not ${manifest.weightsBytes}`;
    if (edgeDigest(weightsFile, size) !== manifest.weightsEnds) return `${WEIGHTS_FILE} has changed`;
    const weights = new Map(Object.entries(manifest.weights));
    for (const name of names) {
      const t = weights.get(name);
      if (!t) return `no weight '${name}'`;
      if (t.offset + t.length > size || t.length !== t.dims.reduce((a, d) => a * d, 4))
        return `weight '${name}' does not fit ${WEIGHTS_FILE}`;
    }
    return weights;
  } catch (err) {
    if (err instanceof LoupeError) return err.message;
    throw err;
  }
}

/**
 * A hash of config.json and every weight file's bytes. Hashing a large
 * checkpoint takes seconds, so the result is remembered per file path, size
 * and modification time; a changed file is hashed again.
 */
function contentKey(
  ckpt: Checkpoint,
  cacheDir: string,
  onNotice: NoticeSink,
  onProgress?: (p: CompileProgress) => void,
): string {
  const files = [ckpt.configFile, ...ckpt.weights.files.map((f) => f.file)];
  const memoFile = path.join(cacheDir, 'fingerprints.json');
  let memo: Record<string, string> = {};
  if (isPresent(memoFile)) {
    try {
      memo = readJsonFile(memoFile, JSON_KINDS.cache, fingerprintMemo);
    } catch (err) {
      if (!(err instanceof LoupeError)) throw err;
      onNotice(`${errorMessage(err)}; the fingerprint memo is rebuilt`);
    }
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
      writeFileAtomic(memoFile, JSON.stringify(memo));
    } catch {
      // The memo only saves time; failing to write it is harmless.
    }
  }
  return outer.digest('hex').slice(0, 32);
}

const fingerprintMemo = recordOf(
  schemaMatching<string>('a SHA-256 hex digest', (v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v)),
);

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
