/**
 * A sparse autoencoder in SAELens's folder format: loaded, validated against
 * its cfg.json, run through onnxruntime, and saved back so SAELens can load
 * what Loupe writes.
 *
 * A folder holds `cfg.json` (either layout; see config.ts),
 * `sae_weights.safetensors` (`W_enc` [d_in, d_sae], `b_enc` [d_sae], `W_dec`
 * [d_sae, d_in], `b_dec` [d_in]; JumpReLU adds `threshold` [d_sae], stored as
 * `log_threshold` by a few SAELens versions; gated SAEs have `b_gate`,
 * `r_mag` and `b_mag` instead of `b_enc`), optionally `sparsity.safetensors`
 * (`sparsity` [d_sae], log10 of each feature's firing rate) and, for
 * 'expected_average_only_in' checkpoints, `activation_scaler.json`.
 * Tensors may be f32, f16 or bf16; computation is f32.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultCacheDir } from '../compile';
import { LoupeError } from '../errors';
import { ExternalTensor } from '../graph/builder';
import { isPresent } from '../inputFiles';
import { GraphSession } from '../runtime';
import { SafetensorsFile, TensorToWrite, assertFinite, safetensorsChunks } from '../safetensors';
import { recoverResult, writeFileAtomic, writeResultFolder } from '../safeWrite';
import { Tensor, numel } from '../tensor';
import { JSON_KINDS, readJsonObject } from '../untrustedJson';
import { SaeConfig, parseSaeConfig, saeConfigToJson } from './config';
import {
  FEATURE_ACTS,
  FEATURE_ADD,
  FEATURE_MUL,
  SAE_INPUT,
  SAE_OUT,
  SAE_OUT_EDITED,
  SaeGraphMode,
  buildSaeGraph,
} from './graph';

export const SAE_CFG_FILE = 'cfg.json';
export const SAE_WEIGHTS_FILE = 'sae_weights.safetensors';
export const SAE_SPARSITY_FILE = 'sparsity.safetensors';
export const ACTIVATION_SCALER_FILE = 'activation_scaler.json';

/** Bump when the cached weights file or the graphs change. */
const CACHE_FORMAT = 1;
/** Rows per onnxruntime call: bounds the [rows, d_sae] activations held at once to about 32 MB. */
const MAX_ELEMENTS_PER_CALL = 1 << 23;

const PICKLE_EXTENSIONS = ['.pt', '.pth', '.bin', '.ckpt', '.pkl'];

export interface SaeOptions {
  /** Where the SAE's f32 weights and graphs are cached; default LOUPE_CACHE_DIR or ~/.cache/loupe. */
  readonly cacheDir?: string;
  /** Intra-op threads for onnxruntime; default: the machine's cores. */
  readonly threads?: number;
  /**
   * The 'expected_average_only_in' scaling factor, when neither cfg.json
   * (`norm_scaling_factor`) nor `activation_scaler.json` holds it (SAELens
   * keeps the public releases' factors in its pretrained_saes.yaml).
   */
  readonly normScalingFactor?: number;
}

export interface EncodeOptions {
  /** Subtract each row's mean before encoding (and add it back to reconstructions). Default false. */
  readonly center?: boolean;
}

export interface ForwardOptions extends EncodeOptions {
  /**
   * Feature edits, f' = f · featureMul + featureAdd, applied before decoding
   * `saeOutEdited`: each [d_sae], [1, d_sae] or one row per input row [n, d_sae].
   */
  readonly featureMul?: Tensor;
  readonly featureAdd?: Tensor;
}

export interface ForwardResult {
  /** [..., d_sae] */
  readonly featureActs: Tensor;
  /** The reconstruction, [..., d_in]. */
  readonly saeOut: Tensor;
  /** The reconstruction from the edited feature activations (equal to saeOut without edits). */
  readonly saeOutEdited: Tensor;
}

/** The tensors an SAE is made of, as f32 with their shapes, under SAELens's names. */
export type SaeParams = ReadonlyMap<string, Tensor>;

export class Sae {
  private readonly sessions = new Map<string, Promise<GraphSession>>();
  private compiled: { dir: string; weights: Map<string, ExternalTensor> } | null = null;

  private constructor(
    /** The folder it was loaded from (null for an SAE made in memory). */
    readonly dir: string | null,
    readonly config: SaeConfig,
    /** The stored tensors widened to f32 (JumpReLU's threshold as `threshold`, never `log_threshold`). */
    readonly params: SaeParams,
    /** `sparsity` from sparsity.safetensors: log10 of each feature's firing rate, when present. */
    readonly sparsity: Float32Array | null,
    /** The 'expected_average_only_in' factor in use (null: none known, inputs are not scaled). */
    readonly normScalingFactor: number | null,
    /** Things the user should know that do not stop the SAE from loading. */
    readonly warnings: readonly string[],
    private readonly options: SaeOptions,
  ) {}

  /** Opens a SAELens folder (or its cfg.json / sae_weights.safetensors). */
  static load(dirOrFile: string, options: SaeOptions = {}): Sae {
    const dir = resolveSaeDir(dirOrFile);
    const cfgFile = path.join(dir, SAE_CFG_FILE);
    const config = parseSaeConfig(readJsonObject(cfgFile, JSON_KINDS.saeConfig), cfgFile);
    const file = SafetensorsFile.open(saeWeightsFile(dir));
    const params = readParams(file, config);
    const sparsity = readSparsity(dir, config);
    const warnings: string[] = [];
    let factor = options.normScalingFactor ?? config.normScalingFactor ?? readScalerFactor(dir);
    if (config.normalizeActivations !== 'expected_average_only_in') factor = null;
    else if (factor === null) {
      warnings.push(
        `${cfgFile}: normalize_activations is 'expected_average_only_in' but no scaling factor is given ` +
          `(norm_scaling_factor in cfg.json, or ${ACTIVATION_SCALER_FILE}); activations are encoded unscaled, ` +
          `as SAELens does when it loads a folder, so feature activations may be off in scale`,
      );
    }
    return new Sae(dir, config, params, sparsity, factor, warnings, options);
  }

  /** An SAE from tensors in memory (a trainer's result); validated like a loaded one. */
  static fromParams(
    config: SaeConfig,
    params: SaeParams,
    extras: { sparsity?: Float32Array; normScalingFactor?: number } & SaeOptions = {},
  ): Sae {
    const checked = new Map<string, Tensor>();
    const source = {
      what: 'SAE parameters',
      has: (name: string) => params.has(name),
      shape: (name: string) => params.get(name)!.dims,
      read: (name: string) => params.get(name)!.data,
    };
    for (const [name, t] of collectParams(source, config)) checked.set(name, t);
    if (extras.sparsity && extras.sparsity.length !== config.dSae) {
      throw new LoupeError(`sparsity has ${extras.sparsity.length} values but d_sae = ${config.dSae}`);
    }
    const factor =
      config.normalizeActivations === 'expected_average_only_in'
        ? (extras.normScalingFactor ?? config.normScalingFactor)
        : null;
    return new Sae(null, config, checked, extras.sparsity ?? null, factor, [], extras);
  }

  /** A name for messages: the folder, or the hook for an SAE made in memory. */
  get label(): string {
    return this.dir ?? `SAE on ${this.config.hookName}`;
  }

  /** Feature activations [..., d_sae] of activations [..., d_in]. */
  async encode(x: Tensor, options: EncodeOptions = {}): Promise<Tensor> {
    const rows = this.rowsOf(x, this.config.dIn, 'input');
    const out = new Float32Array(rows * this.config.dSae);
    await this.inChunks(rows, this.config.dSae, 'encode', options.center ?? false, async (session, r0, n) => {
      const feeds = { [SAE_INPUT]: f32([n, this.config.dIn], x.data, r0 * this.config.dIn) };
      const res = await session.run(feeds, [FEATURE_ACTS]);
      out.set(res.get(FEATURE_ACTS)!.data, r0 * this.config.dSae);
    });
    return { dims: [...x.dims.slice(0, -1), this.config.dSae], data: out };
  }

  /** Encode and decode in one pass, with optional feature edits; see ForwardResult. */
  async forward(x: Tensor, options: ForwardOptions = {}): Promise<ForwardResult> {
    const { dIn, dSae } = this.config;
    const rows = this.rowsOf(x, dIn, 'input');
    const mul = this.featureEdit(options.featureMul, rows, 'featureMul');
    const add = this.featureEdit(options.featureAdd, rows, 'featureAdd');
    const acts = new Float32Array(rows * dSae);
    const recon = new Float32Array(rows * dIn);
    const edited = new Float32Array(rows * dIn);
    await this.inChunks(rows, dSae, 'forward', options.center ?? false, async (session, r0, n) => {
      const slice = (e: { perRow: boolean; data: Float32Array }): ReturnType<typeof f32> =>
        e.perRow ? f32([n, dSae], e.data, r0 * dSae) : f32([1, e.data.length], e.data, 0);
      const res = await session.run(
        {
          [SAE_INPUT]: f32([n, dIn], x.data, r0 * dIn),
          [FEATURE_MUL]: slice(mul),
          [FEATURE_ADD]: slice(add),
        },
        [FEATURE_ACTS, SAE_OUT, SAE_OUT_EDITED],
      );
      acts.set(res.get(FEATURE_ACTS)!.data, r0 * dSae);
      recon.set(res.get(SAE_OUT)!.data, r0 * dIn);
      edited.set(res.get(SAE_OUT_EDITED)!.data, r0 * dIn);
    });
    const lead = x.dims.slice(0, -1);
    return {
      featureActs: { dims: [...lead, dSae], data: acts },
      saeOut: { dims: [...lead, dIn], data: recon },
      saeOutEdited: { dims: [...lead, dIn], data: edited },
    };
  }

  /**
   * Reconstructions [..., d_in] of feature activations [..., d_sae]. SAEs that
   * normalize each input ('constant_norm_rescale', 'layer_norm') need the input
   * to undo it: use `forward` for them.
   */
  async decode(featureActs: Tensor): Promise<Tensor> {
    const { dIn, dSae, normalizeActivations } = this.config;
    if (normalizeActivations === 'constant_norm_rescale' || normalizeActivations === 'layer_norm') {
      throw new LoupeError(
        `${this.label}: normalize_activations '${normalizeActivations}' rescales each input, so decoding needs the input; use forward()`,
      );
    }
    const rows = this.rowsOf(featureActs, dSae, 'feature activations');
    const out = new Float32Array(rows * dIn);
    await this.inChunks(rows, dSae, 'decode', false, async (session, r0, n) => {
      const res = await session.run({ [FEATURE_ACTS]: f32([n, dSae], featureActs.data, r0 * dSae) }, [
        SAE_OUT,
      ]);
      out.set(res.get(SAE_OUT)!.data, r0 * dIn);
    });
    return { dims: [...featureActs.dims.slice(0, -1), dIn], data: out };
  }

  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((p) => p.then((s) => s.release()).catch(() => undefined)));
  }

  private rowsOf(t: Tensor, width: number, what: string): number {
    const last = t.dims[t.dims.length - 1];
    if (t.dims.length === 0 || last !== width || t.data.length !== numel(t.dims)) {
      throw new LoupeError(
        `${this.label}: ${what} of shape [${t.dims.join(', ')}] does not end in ${width} (d_${what === 'input' ? 'in' : 'sae'})`,
      );
    }
    return t.data.length / width;
  }

  private featureEdit(
    t: Tensor | undefined,
    rows: number,
    what: string,
  ): { perRow: boolean; data: Float32Array } {
    const dSae = this.config.dSae;
    if (!t) return { perRow: false, data: new Float32Array([what === 'featureMul' ? 1 : 0]) };
    if (t.data.length === dSae || t.data.length === 1) return { perRow: false, data: t.data };
    if (t.data.length === rows * dSae) return { perRow: true, data: t.data };
    throw new LoupeError(
      `${this.label}: ${what} of shape [${t.dims.join(', ')}] is neither [d_sae] = [${dSae}] nor one row of ${dSae} per input row (${rows})`,
    );
  }

  private async inChunks(
    rows: number,
    width: number,
    mode: SaeGraphMode,
    center: boolean,
    each: (session: GraphSession, firstRow: number, n: number) => Promise<void>,
  ): Promise<void> {
    if (rows === 0) return;
    const session = await this.session(mode, center);
    const step = Math.max(1, Math.floor(MAX_ELEMENTS_PER_CALL / width));
    for (let r0 = 0; r0 < rows; r0 += step) await each(session, r0, Math.min(step, rows - r0));
  }

  private session(mode: SaeGraphMode, center: boolean): Promise<GraphSession> {
    const key = `${mode}-${center ? 'centred' : 'raw'}`;
    const cached = this.sessions.get(key);
    if (cached) return cached;
    const made = (async () => {
      const compiled = this.compile();
      const bytes = buildSaeGraph(this.config, compiled.weights, 'weights.bin', {
        mode,
        center,
        normScalingFactor: this.normScalingFactor,
      });
      const file = path.join(compiled.dir, `graph-${key}-${hashBytes(bytes).slice(0, 16)}.onnx`);
      if (!fs.existsSync(file)) {
        writeFileAtomic(file, bytes);
      }
      const threads = this.options.threads ?? Math.max(1, os.availableParallelism());
      return GraphSession.create(file, { threads });
    })();
    made.catch(() => this.sessions.delete(key));
    this.sessions.set(key, made);
    return made;
  }

  /** Writes the f32 tensors once into the cache (keyed by their content) for the graphs to reference. */
  private compile(): { dir: string; weights: Map<string, ExternalTensor> } {
    if (this.compiled) return this.compiled;
    const hash = crypto.createHash('sha256');
    hash.update(`loupe-sae-${CACHE_FORMAT}\n`);
    for (const [name, t] of this.params) {
      hash.update(`${name}:${t.dims.join('x')}\n`);
      hash.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
    const dir = path.join(this.options.cacheDir ?? defaultCacheDir(), 'sae', hash.digest('hex').slice(0, 32));
    const weights = new Map<string, ExternalTensor>();
    let offset = 0;
    for (const [name, t] of this.params) {
      weights.set(name, { offset, length: t.data.byteLength, dims: t.dims });
      offset += t.data.byteLength;
    }
    const file = path.join(dir, 'weights.bin');
    if (!fs.existsSync(file) || fs.statSync(file).size !== offset) {
      writeFileAtomic(
        file,
        [...this.params.values()].map(
          (t) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
        ),
      );
    }
    this.compiled = { dir, weights };
    return this.compiled;
  }
}

/** What `saveSae` writes: a loaded or trained SAE. */
export interface SaeToSave {
  readonly config: SaeConfig;
  readonly params: SaeParams;
  readonly sparsity?: Float32Array | null;
  readonly normScalingFactor?: number | null;
}

/**
 * Writes an SAE as SAELens 6 saves one: `cfg.json` in the newer layout (with
 * `metadata`), `sae_weights.safetensors` in f32, and `sparsity.safetensors`
 * when there is a sparsity. A known 'expected_average_only_in' factor and old
 * SAELens's finetuning `scaling_factor` are folded into the weights (as
 * SAELens does when training ends), so the result needs neither. The folder
 * is replaced in one step (safeWrite.ts); what else it holds, but a feature
 * database and a checkpoint of the weights it replaces, is kept.
 */
export function saveSae(dir: string, sae: SaeToSave): void {
  const cfg = sae.config;
  const get = (name: string): Tensor => {
    const t = sae.params.get(name);
    if (!t) throw new LoupeError(`cannot save the SAE: it has no '${name}'`);
    return t;
  };
  const tensors = new Map<string, Float32Array>();
  for (const name of paramNames(cfg)) tensors.set(name, Float32Array.from(get(name).data));
  if (cfg.finetuningScalingFactor) {
    const scale = get('scaling_factor').data;
    const wDec = tensors.get('W_dec')!;
    for (let i = 0; i < cfg.dSae; i++) for (let j = 0; j < cfg.dIn; j++) wDec[i * cfg.dIn + j] *= scale[i];
  }
  const factor =
    cfg.normalizeActivations === 'expected_average_only_in' ? (sae.normScalingFactor ?? null) : null;
  if (factor !== null) {
    for (const v of [tensors.get('W_enc')!]) for (let i = 0; i < v.length; i++) v[i] *= factor;
    for (const v of [tensors.get('W_dec')!, tensors.get('b_dec')!])
      for (let i = 0; i < v.length; i++) v[i] /= factor;
  }
  const written = { ...cfg, finetuningScalingFactor: false };
  const toWrite = new Map<string, TensorToWrite>();
  for (const [name, data] of tensors) toWrite.set(name, { dtype: 'F32', shape: get(name).dims, data });
  writeResultFolder(dir, 'sae', (out) => {
    out.file(SAE_WEIGHTS_FILE, safetensorsChunks(toWrite, { format: 'pt' }));
    if (sae.sparsity) {
      out.file(
        SAE_SPARSITY_FILE,
        safetensorsChunks(new Map([['sparsity', { dtype: 'F32', shape: [cfg.dSae], data: sae.sparsity }]]), {
          format: 'pt',
        }),
      );
    }
    out.file(SAE_CFG_FILE, `${JSON.stringify(saeConfigToJson(written, factor !== null), null, 2)}\n`);
  });
}

/** Names of the tensors an architecture stores, in SAELens's order. */
function paramNames(cfg: SaeConfig): string[] {
  switch (cfg.architecture) {
    case 'gated':
      return ['W_enc', 'b_gate', 'r_mag', 'b_mag', 'W_dec', 'b_dec'];
    case 'jumprelu':
      return ['W_enc', 'b_enc', 'W_dec', 'b_dec', 'threshold'];
    default:
      return ['W_enc', 'b_enc', 'W_dec', 'b_dec'];
  }
}

interface ParamSource {
  readonly what: string;
  has(name: string): boolean;
  shape(name: string): readonly number[];
  read(name: string): Float32Array;
}

/** Checks and reads every tensor the cfg's architecture needs, naming the file and the fault. */
function collectParams(src: ParamSource, cfg: SaeConfig): Map<string, Tensor> {
  const { dIn, dSae } = cfg;
  const expected: Record<string, number[]> = {
    W_enc: [dIn, dSae],
    b_enc: [dSae],
    W_dec: [dSae, dIn],
    b_dec: [dIn],
    threshold: [dSae],
    log_threshold: [dSae],
    b_gate: [dSae],
    r_mag: [dSae],
    b_mag: [dSae],
    scaling_factor: [dSae],
    finetuning_scaling_factor: [dSae],
  };
  const out = new Map<string, Tensor>();
  const take = (stored: string, as: string = stored): void => {
    const shape = src.shape(stored);
    const want = expected[stored];
    if (shape.length !== want.length || shape.some((d, i) => d !== want[i])) {
      throw new LoupeError(
        `${src.what}: tensor '${stored}' has shape [${shape.join(', ')}] but cfg.json's d_in = ${dIn} and d_sae = ${dSae} need [${want.join(', ')}]`,
      );
    }
    const data = src.read(stored);
    assertFinite(data, `${src.what}: tensor '${stored}'`);
    out.set(as, { dims: want, data });
  };
  const need = (name: string): void => {
    if (!src.has(name)) {
      throw new LoupeError(`${src.what}: no tensor '${name}', which a ${cfg.architecture} SAE needs`);
    }
  };
  for (const name of paramNames(cfg)) {
    if (name === 'threshold' && !src.has('threshold') && src.has('log_threshold')) {
      // A few SAELens versions saved JumpReLU's training parameter as it is.
      take('log_threshold', 'threshold');
      const t = out.get('threshold')!.data;
      for (let i = 0; i < t.length; i++) t[i] = Math.exp(t[i]);
      continue;
    }
    need(name);
    take(name);
  }
  // Old SAELens's finetuning scale: all ones means none (SAELens drops it then too).
  const scaleName = ['scaling_factor', 'finetuning_scaling_factor'].find((n) => src.has(n));
  if (scaleName) {
    take(scaleName, 'scaling_factor');
    const s = out.get('scaling_factor')!.data;
    if (s.every((v) => v === 1)) out.delete('scaling_factor');
    else if (!cfg.finetuningScalingFactor) {
      throw new LoupeError(
        `${src.what}: tensor '${scaleName}' scales the features but cfg.json's finetuning_scaling_factor is false; the two disagree`,
      );
    }
  }
  if (cfg.finetuningScalingFactor && !out.has('scaling_factor')) {
    throw new LoupeError(
      `${src.what}: cfg.json sets finetuning_scaling_factor but there is no 'scaling_factor' tensor (or it is all ones)`,
    );
  }
  return out;
}

function readParams(file: SafetensorsFile, cfg: SaeConfig): Map<string, Tensor> {
  return collectParams(
    {
      what: file.file,
      has: (name) => file.tensors.has(name),
      shape: (name) => file.info(name).shape,
      read: (name) => file.readF32(name),
    },
    cfg,
  );
}

function readSparsity(dir: string, cfg: SaeConfig): Float32Array | null {
  const file = path.join(dir, SAE_SPARSITY_FILE);
  if (!isPresent(file)) return null;
  const st = SafetensorsFile.open(file);
  if (!st.tensors.has('sparsity')) throw new LoupeError(`${file}: no tensor 'sparsity'`);
  const shape = st.info('sparsity').shape;
  if (numel(shape) !== cfg.dSae) {
    throw new LoupeError(
      `${file}: 'sparsity' has shape [${shape.join(', ')}] but d_sae = ${cfg.dSae}; it belongs to another SAE`,
    );
  }
  return st.readF32('sparsity');
}

function readScalerFactor(dir: string): number | null {
  const file = path.join(dir, ACTIVATION_SCALER_FILE);
  if (!isPresent(file)) return null;
  const value = readJsonObject(file, JSON_KINDS.saeConfig).scaling_factor;
  if (value === null || value === undefined) return null;
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new LoupeError(`${file}: scaling_factor must be a positive number, not ${JSON.stringify(value)}`);
  }
  return value;
}

function resolveSaeDir(dirOrFile: string): string {
  const p = path.resolve(dirOrFile);
  if (PICKLE_EXTENSIONS.includes(path.extname(p))) throw pickleRefusal(p);
  recoverResult(p); // a save killed mid-swap leaves the old SAE or the new one, put back here
  if (!fs.existsSync(p)) throw new LoupeError(`${p}: no such SAE folder`);
  if (fs.statSync(p).isFile()) {
    if ([SAE_CFG_FILE, SAE_WEIGHTS_FILE].includes(path.basename(p))) return path.dirname(p);
    throw new LoupeError(
      `${p}: an SAE is a SAELens folder (cfg.json + sae_weights.safetensors); pass the folder`,
    );
  }
  if (!isPresent(path.join(p, SAE_CFG_FILE))) {
    const pickle = fs.readdirSync(p).find((e) => PICKLE_EXTENSIONS.includes(path.extname(e)));
    if (pickle) throw pickleRefusal(path.join(p, pickle));
    throw new LoupeError(
      `${p}: no cfg.json; an SAE folder is SAELens's format (cfg.json + sae_weights.safetensors)`,
    );
  }
  return p;
}

/** The SAE folder's weights file, or an error that says what is there instead (a pickle, another name). */
export function saeWeightsFile(dir: string): string {
  const file = path.join(dir, SAE_WEIGHTS_FILE);
  if (isPresent(file)) return file;
  const entries = fs.readdirSync(dir);
  const pickle = entries.find((e) => PICKLE_EXTENSIONS.includes(path.extname(e)));
  if (pickle) throw pickleRefusal(path.join(dir, pickle));
  const others = entries.filter((e) => e.endsWith('.safetensors') && e !== SAE_SPARSITY_FILE);
  if (others.length > 0) {
    throw new LoupeError(
      `${dir}: found ${others.join(', ')} but no ${SAE_WEIGHTS_FILE}; SAELens folders name their weights ${SAE_WEIGHTS_FILE}`,
    );
  }
  throw new LoupeError(`${dir}: no ${SAE_WEIGHTS_FILE}`);
}

function pickleRefusal(file: string): LoupeError {
  return new LoupeError(
    `${file}: PyTorch pickle weights are refused on purpose, because unpickling can run arbitrary code; ` +
      `convert once to safetensors (in Python: safetensors.torch.save_file(torch.load(file), 'sae_weights.safetensors') ` +
      `next to a SAELens cfg.json) and open the folder again`,
  );
}

function f32(
  dims: readonly number[],
  data: Float32Array,
  offset: number,
): { type: 'float32'; dims: readonly number[]; data: Float32Array } {
  const n = numel(dims);
  return { type: 'float32', dims, data: data.subarray(offset, offset + n) };
}

function hashBytes(bytes: Uint8Array): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}
