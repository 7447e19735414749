/**
 * circuit-tracer's transcoder folders, read and written: the one place that
 * knows their layout, so that what Loupe trains loads in circuit-tracer and
 * what circuit-tracer (or Gemma Scope 2) publishes loads in Loupe.
 *
 * A folder holds `config.yaml` (`model_kind: transcoder_set` or
 * `cross_layer_transcoder`, `feature_input_hook`, `feature_output_hook`,
 * optionally `activation: relu | jump_relu | topk` with `k`) and:
 * - a transcoder set: `layer_{i}.safetensors` for i = 0..n-1 with `W_enc`
 *   [d_tc, d_model] (transposed against SAELens), `b_enc` [d_tc], `W_dec`
 *   [d_tc, d_model], `b_dec` [d_model], `activation_function.threshold`
 *   [d_tc] for JumpReLU and optionally `W_skip` [d_model, d_model], applied
 *   as x · W_skipᵀ (an nn.Linear weight);
 * - a cross-layer transcoder: `W_enc_{i}.safetensors` (`W_enc_i` [d_tc,
 *   d_model], `b_enc_i`, `b_dec_i` [d_model], `threshold_i` for JumpReLU) and
 *   `W_dec_{i}.safetensors` (`W_dec_i` [d_tc, n − i, d_model]: layer i's
 *   features write to layers i..n−1).
 * Encoding is `pre = x · W_encᵀ + b_enc`, then ReLU, JumpReLU (`pre ·
 * [pre > threshold]`) or TopK (the k largest of `pre`, kept as they are:
 * circuit-tracer's TopK applies no ReLU). Headers are read when the folder
 * opens; tensors only when asked for, decoder rows a few at a time.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dump as dumpYaml, load as loadYaml } from 'js-yaml';
import { LoupeError } from '../errors';
import { writeFileAtomic } from '../safeWrite';
import { checkFolder, readInputText } from '../inputFiles';
import { SafetensorsFile, TensorToWrite, assertFinite, f32ToF16, writeSafetensors } from '../safetensors';

export const TRANSCODER_CONFIG_FILE = 'config.yaml';

/** config.yaml is a few lines; anything near this size is not one. */
const MAX_CONFIG_BYTES = 1024 * 1024;

export type TranscoderModelKind = 'transcoder_set' | 'cross_layer_transcoder';

export type TranscoderActivation =
  { readonly kind: 'relu' } | { readonly kind: 'jump_relu' } | { readonly kind: 'topk'; readonly k: number };

/** What config.yaml says. */
export interface TranscoderSetConfig {
  readonly modelKind: TranscoderModelKind;
  /** circuit-tracer's per-block hook name (TransformerLens style), e.g. `hook_resid_mid`, `mlp.hook_in`. */
  readonly featureInputHook: string;
  /** e.g. `hook_mlp_out`, `mlp.hook_out`. */
  readonly featureOutputHook: string;
  /** config.yaml's `activation`; null when absent (JumpReLU where the files hold a threshold, else ReLU). */
  readonly activation: 'relu' | 'jump_relu' | 'topk' | null;
  /** TopK's k (config.yaml's `k`), null for other activations. */
  readonly k: number | null;
  /** Keys Loupe does not use (`scan`, ...), kept so that a rewrite keeps them. */
  readonly extra: Readonly<Record<string, unknown>>;
}

/** One layer's transcoder: shapes checked when the folder opens, tensors read on demand. */
export interface TranscoderLayer {
  readonly layer: number;
  readonly activation: TranscoderActivation;
  readonly hasSkip: boolean;
  /** The layers its decoder writes to: [layer] in a set, layer..n−1 in a CLT. */
  readonly outputLayers: readonly number[];
  /** `W_enc` [d_tc, d_model] as f32. */
  readEncoder(): Float32Array;
  readEncoderBias(): Float32Array;
  /** JumpReLU's threshold [d_tc], null for ReLU and TopK. */
  readThreshold(): Float32Array | null;
  /** `b_dec` [d_model] of this layer's output (in a CLT, the bias added at layer `layer`). */
  readDecoderBias(): Float32Array;
  /** `W_skip` [d_model, d_model] (applied as x · W_skipᵀ), null without a skip connection. */
  readSkip(): Float32Array | null;
  /** Decoder rows of the given features, end to end: each [outputLayers.length, d_model]. */
  readDecoderRows(features: readonly number[]): Float32Array;
}

export interface TranscoderSetFolder {
  readonly dir: string;
  readonly config: TranscoderSetConfig;
  readonly nLayers: number;
  readonly dModel: number;
  readonly dTranscoder: number;
  readonly layers: readonly TranscoderLayer[];
}

/** True when the folder has circuit-tracer's config.yaml (for the Models & SAEs tree and format detection). */
export function isTranscoderSetFolder(dir: string): boolean {
  return fs.existsSync(path.join(dir, TRANSCODER_CONFIG_FILE));
}

export function readTranscoderSetConfig(dir: string): TranscoderSetConfig {
  const file = path.join(dir, TRANSCODER_CONFIG_FILE);
  const text = readInputText(file, 'transcoder config', { maxBytes: MAX_CONFIG_BYTES });
  let value: unknown;
  try {
    // js-yaml's default schema builds plain data only (no tags that construct objects).
    value = loadYaml(text, { filename: file });
  } catch (err) {
    throw new LoupeError(`${file}: not valid YAML (${(err as Error).message.split('\n')[0]})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new LoupeError(`${file}: expected a YAML mapping of keys (model_kind, feature_input_hook, ...)`);
  }
  return parseTranscoderSetConfig(value as Record<string, unknown>, file);
}

export function parseTranscoderSetConfig(raw: Record<string, unknown>, file: string): TranscoderSetConfig {
  const str = (key: string): string => {
    const v = raw[key];
    if (typeof v !== 'string' || v.length === 0) {
      throw new LoupeError(
        `${file}: ${key} must be a non-empty string, not ${JSON.stringify(v) ?? 'missing'}`,
      );
    }
    return v;
  };
  const kind = str('model_kind');
  if (kind !== 'transcoder_set' && kind !== 'cross_layer_transcoder') {
    throw new LoupeError(
      `${file}: model_kind '${kind}' is not one circuit-tracer knows; expected transcoder_set or cross_layer_transcoder`,
    );
  }
  const activationRaw = raw.activation;
  let activation: TranscoderSetConfig['activation'] = null;
  if (activationRaw !== undefined && activationRaw !== null) {
    if (activationRaw !== 'relu' && activationRaw !== 'jump_relu' && activationRaw !== 'topk') {
      throw new LoupeError(
        `${file}: activation ${JSON.stringify(activationRaw)} is not relu, jump_relu or topk`,
      );
    }
    activation = activationRaw;
  }
  let k: number | null = null;
  if (activation === 'topk') {
    if (!Number.isSafeInteger(raw.k) || (raw.k as number) <= 0) {
      throw new LoupeError(
        `${file}: activation topk needs k, a positive integer, not ${JSON.stringify(raw.k) ?? 'missing'}`,
      );
    }
    k = raw.k as number;
  }
  if (raw.transcoders !== undefined) {
    throw new LoupeError(
      `${file}: lists its layers under 'transcoders' (files elsewhere, often hf:// URIs); ` +
        `Loupe reads a folder with layer_{i}.safetensors next to config.yaml, as circuit-tracer's cache writes it`,
    );
  }
  const known = new Set(['model_kind', 'feature_input_hook', 'feature_output_hook', 'activation', 'k']);
  const extra = Object.fromEntries(Object.entries(raw).filter(([key]) => !known.has(key)));
  return {
    modelKind: kind,
    featureInputHook: str('feature_input_hook'),
    featureOutputHook: str('feature_output_hook'),
    activation,
    k,
    extra,
  };
}

/** Opens a transcoder set or CLT folder: config.yaml and every layer file's header, checked against each other. */
export function openTranscoderSet(dir: string): TranscoderSetFolder {
  checkFolder(dir, 'transcoder folder');
  const config = readTranscoderSetConfig(dir);
  return config.modelKind === 'transcoder_set' ? openPerLayerSet(dir, config) : openCrossLayer(dir, config);
}

/** Consecutive `${prefix}{i}.safetensors` files from 0, or an error naming the gap. */
function layerFiles(dir: string, prefix: string): string[] {
  const pattern = new RegExp(`^${prefix.replace('.', '\\.')}(\\d+)\\.safetensors$`);
  const found = new Set<number>();
  for (const e of fs.readdirSync(dir)) {
    const m = pattern.exec(e);
    if (m) found.add(Number(m[1]));
  }
  if (found.size === 0) {
    const pickle = fs.readdirSync(dir).find((e) => /\.(pt|pth|bin|ckpt|pkl)$/.test(e));
    const hint = pickle ? ` (found ${pickle}: PyTorch pickles are refused, convert to safetensors)` : '';
    throw new LoupeError(`${dir}: config.yaml is here but no ${prefix}0.safetensors${hint}`);
  }
  const n = Math.max(...found) + 1;
  for (let i = 0; i < n; i++) {
    if (!found.has(i)) {
      throw new LoupeError(
        `${dir}: has ${prefix}${n - 1}.safetensors but no ${prefix}${i}.safetensors; every layer from 0 is needed`,
      );
    }
  }
  return Array.from({ length: n }, (_, i) => path.join(dir, `${prefix}${i}.safetensors`));
}

function checkShape(file: SafetensorsFile, name: string, want: readonly number[], meaning: string): void {
  const got = file.info(name).shape;
  if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
    throw new LoupeError(
      `${file.file}: '${name}' has shape [${got.join(', ')}] but ${meaning} needs [${want.join(', ')}]`,
    );
  }
}

function requireTensor(file: SafetensorsFile, name: string, why: string): void {
  if (!file.tensors.has(name)) {
    const names = [...file.tensors.keys()].slice(0, 8).join(', ');
    throw new LoupeError(`${file.file}: no tensor '${name}' (${why}); it holds ${names}`);
  }
}

function resolveActivation(
  config: TranscoderSetConfig,
  hasThreshold: boolean,
  file: string,
): TranscoderActivation {
  if (config.activation === 'topk') return { kind: 'topk', k: config.k! };
  if (config.activation === 'relu') return { kind: 'relu' };
  if (config.activation === 'jump_relu' && !hasThreshold) {
    throw new LoupeError(`${file}: config.yaml says activation jump_relu but the file holds no threshold`);
  }
  return hasThreshold ? { kind: 'jump_relu' } : { kind: 'relu' };
}

function readFinite(file: SafetensorsFile, name: string): Float32Array {
  const values = file.readF32(name);
  assertFinite(values, `${file.file}: tensor '${name}'`);
  return values;
}

const THRESHOLD = 'activation_function.threshold';

function openPerLayerSet(dir: string, config: TranscoderSetConfig): TranscoderSetFolder {
  const files = layerFiles(dir, 'layer_').map((f) => SafetensorsFile.open(f));
  let dModel = 0;
  let dTranscoder = 0;
  const layers = files.map((file, layer): TranscoderLayer => {
    for (const name of ['W_enc', 'b_enc', 'W_dec', 'b_dec'])
      requireTensor(file, name, 'a transcoder layer has W_enc, b_enc, W_dec, b_dec');
    const encShape = file.info('W_enc').shape;
    if (encShape.length !== 2) {
      throw new LoupeError(
        `${file.file}: 'W_enc' has shape [${encShape.join(', ')}]; circuit-tracer's is [d_transcoder, d_model]`,
      );
    }
    if (layer === 0) [dTranscoder, dModel] = encShape;
    const first = `layer_0.safetensors's [${dTranscoder}, ${dModel}]`;
    checkShape(file, 'W_enc', [dTranscoder, dModel], `every layer of a set has the same size, and ${first}`);
    checkShape(file, 'b_enc', [dTranscoder], 'W_enc [d_transcoder, d_model]');
    checkShape(file, 'b_dec', [dModel], 'W_enc [d_transcoder, d_model]');
    const dec = file.info('W_dec').shape;
    if (dec.length === 2 && dec[0] === dModel && dec[1] === dTranscoder && dModel !== dTranscoder) {
      throw new LoupeError(
        `${file.file}: 'W_dec' is [${dec.join(', ')}], the transpose of circuit-tracer's [d_transcoder, d_model] = [${dTranscoder}, ${dModel}]`,
      );
    }
    checkShape(file, 'W_dec', [dTranscoder, dModel], 'W_enc [d_transcoder, d_model]');
    const hasThreshold = file.tensors.has(THRESHOLD);
    if (hasThreshold) checkShape(file, THRESHOLD, [dTranscoder], 'a threshold per feature');
    const hasSkip = file.tensors.has('W_skip');
    if (hasSkip) checkShape(file, 'W_skip', [dModel, dModel], 'a skip connection d_model → d_model');
    const activation = resolveActivation(config, hasThreshold, file.file);
    if (activation.kind === 'topk' && activation.k > dTranscoder) {
      throw new LoupeError(
        `${dir}: config.yaml's k = ${activation.k} is more than the ${dTranscoder} features`,
      );
    }
    return {
      layer,
      activation,
      hasSkip,
      outputLayers: [layer],
      readEncoder: () => readFinite(file, 'W_enc'),
      readEncoderBias: () => readFinite(file, 'b_enc'),
      readThreshold: () => (activation.kind === 'jump_relu' ? readFinite(file, THRESHOLD) : null),
      readDecoderBias: () => readFinite(file, 'b_dec'),
      readSkip: () => (hasSkip ? readFinite(file, 'W_skip') : null),
      readDecoderRows: (features) => file.readRowsF32('W_dec', features),
    };
  });
  return { dir, config, nLayers: files.length, dModel, dTranscoder, layers };
}

function openCrossLayer(dir: string, config: TranscoderSetConfig): TranscoderSetFolder {
  if (config.activation === 'topk') {
    throw new LoupeError(
      `${dir}: config.yaml asks for topk, which circuit-tracer's cross-layer transcoders do not have (relu or jump_relu)`,
    );
  }
  const encFiles = layerFiles(dir, 'W_enc_').map((f) => SafetensorsFile.open(f));
  const n = encFiles.length;
  const decNames = layerFiles(dir, 'W_dec_');
  if (decNames.length !== n) {
    throw new LoupeError(
      `${dir}: ${n} W_enc_{i}.safetensors files but ${decNames.length} W_dec_{i}.safetensors; a CLT has one of each per layer`,
    );
  }
  const decFiles = decNames.map((f) => SafetensorsFile.open(f));
  let dModel = 0;
  let dTranscoder = 0;
  const layers = encFiles.map((enc, i): TranscoderLayer => {
    const dec = decFiles[i];
    for (const name of [`W_enc_${i}`, `b_enc_${i}`, `b_dec_${i}`])
      requireTensor(enc, name, `layer ${i}'s encoder file holds W_enc_${i}, b_enc_${i}, b_dec_${i}`);
    requireTensor(dec, `W_dec_${i}`, `layer ${i}'s decoder`);
    const encShape = enc.info(`W_enc_${i}`).shape;
    if (encShape.length !== 2) {
      throw new LoupeError(
        `${enc.file}: 'W_enc_${i}' has shape [${encShape.join(', ')}]; circuit-tracer's is [d_transcoder, d_model]`,
      );
    }
    if (i === 0) [dTranscoder, dModel] = encShape;
    checkShape(
      enc,
      `W_enc_${i}`,
      [dTranscoder, dModel],
      `every layer the same size as W_enc_0's [${dTranscoder}, ${dModel}]`,
    );
    checkShape(enc, `b_enc_${i}`, [dTranscoder], 'W_enc [d_transcoder, d_model]');
    checkShape(enc, `b_dec_${i}`, [dModel], 'W_enc [d_transcoder, d_model]');
    checkShape(
      dec,
      `W_dec_${i}`,
      [dTranscoder, n - i, dModel],
      `layer ${i} of ${n} writing to layers ${i}..${n - 1}`,
    );
    const thresholdName = `threshold_${i}`;
    const hasThreshold = enc.tensors.has(thresholdName);
    if (hasThreshold) {
      const t = enc.info(thresholdName).shape;
      const count = t.reduce((a, d) => a * d, 1);
      if (count !== dTranscoder || t.some((d, j) => d !== 1 && j !== t.length - 1)) {
        throw new LoupeError(
          `${enc.file}: '${thresholdName}' has shape [${t.join(', ')}] but a threshold per feature is [${dTranscoder}]`,
        );
      }
    }
    const activation = resolveActivation(config, hasThreshold, enc.file);
    return {
      layer: i,
      activation,
      hasSkip: false,
      outputLayers: Array.from({ length: n - i }, (_, j) => i + j),
      readEncoder: () => readFinite(enc, `W_enc_${i}`),
      readEncoderBias: () => readFinite(enc, `b_enc_${i}`),
      readThreshold: () => (activation.kind === 'jump_relu' ? readFinite(enc, thresholdName) : null),
      readDecoderBias: () => readFinite(enc, `b_dec_${i}`),
      readSkip: () => null,
      readDecoderRows: (features) => dec.readRowsF32(`W_dec_${i}`, features),
    };
  });
  return { dir, config, nLayers: n, dModel, dTranscoder, layers };
}

/** One layer's tensors for `writeTranscoderLayer`, f32, in circuit-tracer's layout. */
export interface TranscoderLayerParams {
  /** [d_tc, d_model] */
  readonly W_enc: Float32Array;
  /** [d_tc] */
  readonly b_enc: Float32Array;
  /** [d_tc, d_model] */
  readonly W_dec: Float32Array;
  /** [d_model] */
  readonly b_dec: Float32Array;
  /** JumpReLU's [d_tc]; absent or null otherwise. */
  readonly threshold?: Float32Array | null;
  /** [d_model, d_model], applied as x · W_skipᵀ; absent or null without a skip connection. */
  readonly W_skip?: Float32Array | null;
}

export interface TranscoderShape {
  readonly dModel: number;
  readonly dTranscoder: number;
}

/** The dtype of the written tensors: f16 halves the size where the weights lose nothing that matters. */
export type TranscoderDtype = 'F32' | 'F16';

/**
 * Writes `layer_{layer}.safetensors` into `dir` (through a temporary file).
 * Write every layer first and config.yaml last (`saveTranscoderSet` does),
 * as circuit-tracer's cache does: a folder with config.yaml is complete.
 */
export function writeTranscoderLayer(
  dir: string,
  layer: number,
  shape: TranscoderShape,
  params: TranscoderLayerParams,
  dtype: TranscoderDtype = 'F32',
): void {
  const { dModel, dTranscoder } = shape;
  const tensors = new Map<string, TensorToWrite>();
  const put = (name: string, data: Float32Array, dims: number[]): void => {
    const n = dims.reduce((a, d) => a * d, 1);
    if (data.length !== n) {
      throw new LoupeError(
        `cannot save transcoder layer ${layer}: '${name}' has ${data.length} values, [${dims.join(', ')}] needs ${n}`,
      );
    }
    assertFinite(data, `transcoder layer ${layer}: '${name}'`);
    tensors.set(
      name,
      dtype === 'F16' ? { dtype, shape: dims, data: f32ToF16(data) } : { dtype, shape: dims, data },
    );
  };
  put('W_enc', params.W_enc, [dTranscoder, dModel]);
  put('b_enc', params.b_enc, [dTranscoder]);
  put('W_dec', params.W_dec, [dTranscoder, dModel]);
  put('b_dec', params.b_dec, [dModel]);
  if (params.threshold) put(THRESHOLD, params.threshold, [dTranscoder]);
  if (params.W_skip) put('W_skip', params.W_skip, [dModel, dModel]);
  fs.mkdirSync(dir, { recursive: true });
  writeSafetensors(path.join(dir, `layer_${layer}.safetensors`), tensors);
}

/** Writes config.yaml as circuit-tracer reads it (its own keys first, then the extra ones). */
export function writeTranscoderSetConfig(dir: string, config: TranscoderSetConfig): void {
  const doc: Record<string, unknown> = {
    model_kind: config.modelKind,
    feature_input_hook: config.featureInputHook,
    feature_output_hook: config.featureOutputHook,
  };
  if (config.activation !== null) doc.activation = config.activation;
  if (config.activation === 'topk') doc.k = config.k;
  Object.assign(doc, config.extra);
  writeFileAtomic(path.join(dir, TRANSCODER_CONFIG_FILE), dumpYaml(doc));
}

/** A whole transcoder set: every `layer_{i}.safetensors`, then config.yaml. */
export function saveTranscoderSet(
  dir: string,
  config: TranscoderSetConfig,
  shape: TranscoderShape,
  layers: readonly TranscoderLayerParams[],
  dtype: TranscoderDtype = 'F32',
): void {
  if (config.modelKind !== 'transcoder_set') {
    throw new LoupeError(`cannot save a ${config.modelKind}: Loupe writes per-layer transcoder sets`);
  }
  layers.forEach((params, layer) => writeTranscoderLayer(dir, layer, shape, params, dtype));
  writeTranscoderSetConfig(dir, config);
}
