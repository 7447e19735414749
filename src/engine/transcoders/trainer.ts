/**
 * Trains per-layer transcoders (Dunefsky et al. 2024): each reads an MLP's
 * input (`blocks.L.ln2.hook_normalized`) and predicts its output
 * (`blocks.L.hook_mlp_out`) through sparse features, optionally with a skip
 * term x·W_skipᵀ (Paulo et al. 2025). The recipe is the SAE trainer's (the
 * same step graph with the MLP's output as its target, the same streaming,
 * shuffling, schedule, checkpoints and resume): inputs and targets are each
 * scaled so that E‖x‖ = √d_model, and every layer learns from the same
 * forward pass per batch (one row holds every trained layer's input and
 * output side by side). The result is a circuit-tracer transcoder set
 * (`config.yaml` + `layer_{i}.safetensors`, dictionaries/transcoderSet.ts)
 * with the scaling folded into the weights.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JSON_KINDS, readJsonObject } from '../untrustedJson';
import {
  TranscoderDtype,
  TranscoderLayerParams,
  TranscoderSetConfig,
  isTranscoderSetFolder,
  readTranscoderSetConfig,
  writeTranscoderLayer,
  writeTranscoderSetConfig,
} from '../dictionaries/transcoderSet';
import { CancelledError, LoupeError } from '../errors';
import { writeFileAtomic } from '../safeWrite';
import { HookedModel } from '../model';
import { seededUniform } from '../random';
import { Feed, GraphSession } from '../runtime';
import { SafetensorsFile, TensorToWrite, writeSafetensors } from '../safetensors';
import { Tensor } from '../tensor';
import { ActivationBatches } from '../sae/activationBatches';
import {
  CHECKPOINT,
  StreamedTrainingOptions,
  TrainProgress,
  batchVariance,
  initialise,
  stepSchedule,
  writeCheckpoint,
} from '../sae/trainer';
import {
  METRICS,
  StepArchitecture,
  StepParam,
  buildTrainGraph,
  io,
  paramDims,
  stepParams,
  topkProducts,
} from '../sae/trainGraph';
import { TRANSCODER_INPUT_HOOK, TRANSCODER_OUTPUT_HOOK, transcoderHooks } from './hooks';

export type TranscoderArchitecture = StepArchitecture;

export interface TrainTranscodersOptions extends StreamedTrainingOptions {
  /** The layers to train (each gets its own transcoder, all from one forward pass per batch). */
  readonly layers: readonly number[];
  /** Default 'topk' (k = 32). */
  readonly architecture?: TranscoderArchitecture;
  /** Adds a learned skip term x·W_skipᵀ (W_skip [d_model, d_model]). */
  readonly skip?: boolean;
  /** d_tc = expansion · d_model unless dTranscoder is given. */
  readonly expansion?: number;
  readonly dTranscoder?: number;
  /** The sparsity coefficient: L1 for relu, L0 for jumprelu. */
  readonly l1Coefficient?: number;
  /** JumpReLU: the starting threshold and the straight-through kernel's width (in the scaled units). */
  readonly initialThreshold?: number;
  readonly bandwidth?: number;
  /** How the weights are saved; f16 halves the files. */
  readonly dtype?: TranscoderDtype;
  /** Called after every step with the layers' means (and each layer's own figures). */
  readonly onProgress?: (p: TranscoderTrainProgress) => void;
}

export interface LayerProgress {
  readonly layer: number;
  readonly loss: number;
  readonly mse: number;
  /** Fraction of the MLP output's variance unexplained on this batch. */
  readonly fvu: number;
  readonly l0: number;
  readonly deadFraction: number;
}

/** The SAE trainer's progress (each figure the mean over layers), with each layer's own. */
export interface TranscoderTrainProgress extends TrainProgress {
  readonly layers: readonly LayerProgress[];
}

export interface TranscoderTrainResult {
  readonly outDir: string;
  readonly steps: number;
  readonly tokens: number;
  readonly last: TranscoderTrainProgress | null;
  readonly cancelled: boolean;
}

interface ResolvedOptions {
  architecture: TranscoderArchitecture;
  skip: boolean;
  layers: number[];
  dModel: number;
  dTranscoder: number;
  k: number;
  l1: number;
  initialThreshold: number;
  bandwidth: number;
  lr: number;
  batch: number;
  steps: number;
  contextSize: number;
  bufferRows: number;
  warmup: number;
  l1Warmup: number;
  decayFrom: number;
  deadWindow: number;
  checkpointEvery: number;
  seed: number;
  dtype: TranscoderDtype;
}

interface CheckpointState {
  kind: 'transcoders';
  step: number;
  tokens: number;
  epoch: number;
  documentsDone: number;
  /** Per trained layer: the factors its inputs and targets were scaled by. */
  inputScales: number[];
  outputScales: number[];
  options: ResolvedOptions;
  corpus: string;
}

/** The most f32 values a run keeps for its parameters and optimiser (8 GiB). */
const MAX_TRAINING_VALUES = 2 ** 31;
/** The shuffle buffer's most bytes: a row holds 2·d_model values per layer, so a deep model's rows are wide. */
const BUFFER_BYTES = 512 * 1024 * 1024;
const LOG_FILE = 'training_log.jsonl';
const TRAINING_FILE = 'training.json';

export async function trainTranscoders(
  model: HookedModel,
  options: TrainTranscodersOptions,
): Promise<TranscoderTrainResult> {
  const dModel = model.spec.dModel;
  const resumeState = options.resume ? readCheckpointState(options.outDir) : null;
  if (resumeState) checkResumable(resumeState, options, dModel);
  const o: ResolvedOptions = resumeState?.options ?? resolveOptions(model, options);
  checkExistingSet(options.outDir, o);
  const L = o.layers.length;
  const params = stepParams(o);
  const spec = { dIn: o.dModel, dSae: o.dTranscoder };
  fs.mkdirSync(options.outDir, { recursive: true });

  // ---- one step graph, run once per layer; its parameters are inputs, so it loads from memory ----
  const session = await GraphSession.create(
    buildTrainGraph({
      architecture: o.architecture,
      dIn: o.dModel,
      dSae: o.dTranscoder,
      k: o.k,
      kAux: Math.min(o.dTranscoder, Math.max(o.k, Math.floor(o.dModel / 2))),
      auxCoefficient: 1 / 32,
      auxRows: Math.min(o.batch, 256),
      beta1: 0.9,
      beta2: 0.999,
      adamEps: 1e-8,
      clipNorm: 1,
      transcoder: true,
      skip: o.skip,
      topkWithoutRelu: true,
      topkProducts: topkProducts(o.dTranscoder, o.k),
      bandwidth: o.bandwidth,
    }),
    { threads: options.threads ?? 0 },
  );

  // ---- state: per layer, two alternating buffer sets ----
  const makeSet = (): Record<string, Tensor> => {
    const set: Record<string, Tensor> = {};
    for (const p of params) {
      const dims = paramDims(spec, p);
      const n = dims.reduce((a, b) => a * b, 1);
      for (const name of [io.param(p), io.m(p), io.v(p)]) set[name] = { dims, data: new Float32Array(n) };
    }
    return set;
  };
  const current = o.layers.map(makeSet);
  const next = o.layers.map(makeSet);
  const lastFired = new Float64Array(L * o.dTranscoder);
  const firedCount = new Float64Array(L * o.dTranscoder);
  let step = 0;
  let tokens = 0;
  let inputScales = new Array<number>(L).fill(1);
  let outputScales = new Array<number>(L).fill(1);
  if (resumeState) {
    const st = SafetensorsFile.open(path.join(options.outDir, CHECKPOINT, 'state.safetensors'));
    current.forEach((set, i) => {
      for (const name of Object.keys(set)) set[name].data.set(st.readF32(checkpointName(o.layers[i], name)));
    });
    lastFired.set(st.readF32('last_fired'));
    firedCount.set(st.readF32('fired_count'));
    ({ step, tokens, inputScales, outputScales } = resumeState);
  }

  const hooks = o.layers.flatMap((l) => {
    const h = transcoderHooks(l);
    return [h.input, h.output];
  });
  const batches = new ActivationBatches(model, {
    corpus: options.corpus,
    hooks,
    contextSize: o.contextSize,
    batch: o.batch,
    bufferRows: o.bufferRows,
    seed: o.seed,
    epoch: resumeState?.epoch ?? 0,
    documentsDone: resumeState?.documentsDone ?? 0,
    signal: options.signal,
  });
  const width = batches.width;
  const d = o.dModel;
  /** Layer i's inputs (which 0) or targets (which 1), scaled, as a [batch, d] array. */
  const slice = (rows: Float32Array, i: number, which: 0 | 1, scale: number): Float32Array => {
    const out = new Float32Array(o.batch * d);
    const offset = (2 * i + which) * d;
    for (let r = 0; r < o.batch; r++) {
      const src = r * width + offset;
      for (let j = 0; j < d; j++) out[r * d + j] = rows[src + j] * scale;
    }
    return out;
  };

  if (!resumeState) {
    // Scale inputs and targets so that E‖·‖ = √d_model, measured on the first batch; b_dec starts at the targets' mean.
    const first = await batches.next();
    o.layers.forEach((_, i) => {
      const x = slice(first, i, 0, 1);
      const y = slice(first, i, 1, 1);
      inputScales[i] = Math.sqrt(d) / (meanNorm(x, o.batch, d) || 1);
      outputScales[i] = Math.sqrt(d) / (meanNorm(y, o.batch, d) || 1);
      const mean = new Float64Array(d);
      for (let r = 0; r < o.batch; r++) for (let j = 0; j < d; j++) mean[j] += y[r * d + j];
      initialise(
        current[i],
        { architecture: o.architecture, dIn: d, dSae: o.dTranscoder },
        mean.map((m) => (m / o.batch) * outputScales[i]),
        seededUniform(o.seed + o.layers[i]),
      );
      if (o.architecture === 'jumprelu') current[i].log_threshold.data.fill(Math.log(o.initialThreshold));
    });
    batches.unshift(first);
  }

  const log = fs.createWriteStream(path.join(options.outDir, LOG_FILE), { flags: resumeState ? 'a' : 'w' });
  const started = Date.now();
  const startTokens = tokens;
  let last: TranscoderTrainProgress | null = null;
  let cancelled = false;
  const scalar = (v: number): Feed => ({ type: 'float32', dims: [], data: new Float32Array([v]) });
  const dead = new Float32Array(o.dTranscoder);
  const checkpoint = (): void => {
    const flat: Record<string, Tensor> = {};
    current.forEach((set, i) => {
      for (const [name, t] of Object.entries(set)) flat[checkpointName(o.layers[i], name)] = t;
    });
    const state: CheckpointState = {
      kind: 'transcoders',
      step,
      tokens,
      epoch: batches.epoch,
      documentsDone: batches.documentsDone,
      inputScales,
      outputScales,
      options: o,
      corpus: options.corpus,
    };
    writeCheckpoint(options.outDir, flat, lastFired, firedCount, state);
  };
  try {
    while (step < o.steps) {
      if (options.signal?.aborted) {
        cancelled = true;
        break;
      }
      const rows = await batches.next();
      step++;
      const { lr, l1 } = stepSchedule(o, step);
      const perLayer: LayerProgress[] = [];
      for (let i = 0; i < L; i++) {
        const x = slice(rows, i, 0, inputScales[i]);
        const y = slice(rows, i, 1, outputScales[i]);
        const base = i * o.dTranscoder;
        for (let f = 0; f < o.dTranscoder; f++) dead[f] = tokens - lastFired[base + f] > o.deadWindow ? 1 : 0;
        const feeds: Record<string, Feed> = {
          x: { type: 'float32', dims: [o.batch, d], data: x },
          y: { type: 'float32', dims: [o.batch, d], data: y },
          lr: scalar(lr),
          l1: scalar(l1),
          bc1: scalar(1 / (1 - 0.9 ** step)),
          bc2: scalar(1 / (1 - 0.999 ** step)),
          dead: { type: 'float32', dims: [o.dTranscoder], data: dead },
        };
        for (const [name, t] of Object.entries(current[i]))
          feeds[name] = { type: 'float32', dims: t.dims, data: t.data };
        const into: Record<string, Tensor> = {};
        for (const [name, t] of Object.entries(next[i])) into[io.out(name)] = t;
        const out = await session.run(feeds, [...Object.keys(into), ...METRICS], into);
        [current[i], next[i]] = [next[i], current[i]];
        const fired = out.get('fired')!.data;
        let deadCount = 0;
        for (let f = 0; f < o.dTranscoder; f++) {
          if (fired[f] > 0) lastFired[base + f] = tokens + o.batch;
          firedCount[base + f] += fired[f];
          if (tokens + o.batch - lastFired[base + f] > o.deadWindow) deadCount++;
        }
        const mse = out.get('mse')!.data[0];
        perLayer.push({
          layer: o.layers[i],
          loss: out.get('loss')!.data[0],
          mse,
          fvu: mse / batchVariance(y, o.batch, d),
          l0: out.get('l0')!.data[0],
          deadFraction: deadCount / o.dTranscoder,
        });
      }
      tokens += o.batch;
      const elapsed = (Date.now() - started) / 1000;
      const rate = (tokens - startTokens) / Math.max(elapsed, 1e-9);
      const mean = (key: keyof Omit<LayerProgress, 'layer'>): number =>
        perLayer.reduce((a, p) => a + p[key], 0) / L;
      last = {
        step,
        steps: o.steps,
        tokens,
        activationsPerSecond: rate,
        loss: mean('loss'),
        mse: mean('mse'),
        fvu: mean('fvu'),
        l0: mean('l0'),
        deadFraction: mean('deadFraction'),
        lr,
        etaSeconds: ((o.steps - step) * o.batch) / Math.max(rate, 1e-9),
        layers: perLayer,
      };
      options.onProgress?.(last);
      log.write(`${JSON.stringify(last)}\n`);
      if (step % o.checkpointEvery === 0 && step < o.steps) checkpoint();
    }
  } catch (err) {
    if (!(err instanceof CancelledError)) throw err;
    cancelled = true;
  } finally {
    log.end();
    await batches.close();
    await session.release();
  }
  if (cancelled) {
    // Keep what was learned: a checkpoint to resume from, never a half-written one.
    checkpoint();
    return { outDir: options.outDir, steps: step, tokens, last, cancelled };
  }
  saveTrained(model, options, o, current, firedCount, tokens, inputScales, outputScales);
  fs.rmSync(path.join(options.outDir, CHECKPOINT), { recursive: true, force: true });
  return { outDir: options.outDir, steps: step, tokens, last, cancelled };
}

function checkpointName(layer: number, name: string): string {
  return `layer_${layer}.${name}`;
}

function meanNorm(x: Float32Array, n: number, d: number): number {
  let sum = 0;
  for (let r = 0; r < n; r++) {
    let sq = 0;
    for (let j = 0; j < d; j++) sq += x[r * d + j] ** 2;
    sum += Math.sqrt(sq);
  }
  return sum / n;
}

function resolveOptions(model: HookedModel, options: TrainTranscodersOptions): ResolvedOptions {
  const architecture = options.architecture ?? 'topk';
  const dModel = model.spec.dModel;
  if (options.layers.length === 0) throw new LoupeError('no layers to train transcoders for');
  const dTranscoder = options.dTranscoder ?? Math.round((options.expansion ?? 8) * dModel);
  const batch = options.batchSize ?? 4096;
  const trainingTokens = options.trainingTokens ?? 2_000_000;
  const steps = Math.max(1, Math.ceil(trainingTokens / batch));
  const positive = (v: number, what: string): number => {
    if (!(v > 0) || !Number.isFinite(v)) throw new LoupeError(`${what} must be a positive number, not ${v}`);
    return v;
  };
  positive(dTranscoder, 'd_tc');
  positive(batch, 'the batch size');
  // Sizes checked against the model before anything is allocated.
  if (!Number.isInteger(dTranscoder))
    throw new LoupeError(`d_tc must be an integer, not ${dTranscoder} (expansion × d_model)`);
  // Per layer: W_enc and W_dec, each with two Adam moments, in two alternating sets.
  const stateValues = options.layers.length * 12 * dTranscoder * dModel;
  if (stateValues > MAX_TRAINING_VALUES) {
    throw new LoupeError(
      `${options.layers.length} layer${options.layers.length === 1 ? '' : 's'} of d_tc ${dTranscoder} × d_model ${dModel} need ${stateValues} training values (weights, Adam moments, two sets), more than the ${MAX_TRAINING_VALUES} Loupe trains at once; choose a smaller --d-tc or --expansion, or fewer layers per run`,
    );
  }
  const k = options.k ?? 32;
  if (architecture === 'topk' && (k < 1 || k > dTranscoder))
    throw new LoupeError(`TopK's k must be between 1 and d_tc (${dTranscoder}), not ${k}`);
  // A row holds every layer's input and output.
  const rowBytes = options.layers.length * 2 * dModel * 4;
  const bufferRows = Math.max(
    batch,
    Math.min(batch * (options.bufferBatches ?? 16), Math.floor(BUFFER_BYTES / rowBytes)),
  );
  return {
    architecture,
    skip: options.skip ?? false,
    layers: [...options.layers],
    dModel,
    dTranscoder,
    k,
    // relu's L1 as the SAE trainer's; jumprelu's L0 coefficient is per active feature, so smaller.
    l1: positive(
      options.l1Coefficient ?? (architecture === 'jumprelu' ? 0.05 : 5),
      'the sparsity coefficient',
    ),
    initialThreshold: positive(options.initialThreshold ?? 0.1, 'the initial threshold'),
    bandwidth: positive(options.bandwidth ?? 0.05, 'the threshold kernel width'),
    lr: positive(options.lr ?? 4e-4, 'the learning rate'),
    batch,
    steps,
    contextSize: Math.min(options.contextSize ?? 128, model.spec.nCtx),
    bufferRows,
    warmup: Math.max(1, options.warmupSteps ?? Math.ceil(steps * 0.02)),
    l1Warmup: Math.max(1, Math.ceil(steps * (options.l1WarmupFraction ?? 0.05))),
    decayFrom: Math.floor(steps * (1 - (options.decayFraction ?? 0.2))),
    deadWindow: options.deadWindowTokens ?? Math.max(batch * 4, Math.min(10_000_000, trainingTokens / 5)),
    checkpointEvery: Math.max(1, options.checkpointEvery ?? 100),
    seed: options.seed ?? 42,
    dtype: options.dtype ?? 'F32',
  };
}

function readCheckpointState(outDir: string): CheckpointState {
  const file = path.join(outDir, CHECKPOINT, 'state.json');
  if (!fs.existsSync(file)) throw new LoupeError(`${outDir}: no checkpoint to resume from`);
  const state = readJsonObject(file, JSON_KINDS.trainingState) as unknown as CheckpointState;
  if (state.kind !== 'transcoders') {
    throw new LoupeError(
      `${outDir}: the checkpoint there is an SAE's; resume it with loupe train-sae --resume`,
    );
  }
  return state;
}

function checkResumable(state: CheckpointState, options: TrainTranscodersOptions, dModel: number): void {
  const dir = options.outDir;
  if (state.options.dModel !== dModel) {
    throw new LoupeError(
      `${dir}: the checkpoint's transcoders read ${state.options.dModel} values per token, but this model's d_model is ${dModel}; resume with the model it was trained on`,
    );
  }
  const want = state.options.layers.join(',');
  if (options.layers.join(',') !== want) {
    throw new LoupeError(
      `${dir}: the checkpoint trains layers ${want}, not ${options.layers.join(',')}; resume with --layer ${want}`,
    );
  }
}

/** What config.yaml says about the transcoders of a run (and, as circuit-tracer's exports do, the model's name). */
function setConfig(o: ResolvedOptions, modelName: string | null = null): TranscoderSetConfig {
  return {
    modelKind: 'transcoder_set',
    featureInputHook: TRANSCODER_INPUT_HOOK,
    featureOutputHook: TRANSCODER_OUTPUT_HOOK,
    activation: o.architecture === 'jumprelu' ? 'jump_relu' : o.architecture,
    k: o.architecture === 'topk' ? o.k : null,
    extra: modelName === null ? {} : { model_name: modelName },
  };
}

/** An activation as config.yaml gives it, in words. */
function activationWords(c: TranscoderSetConfig): string {
  return c.activation === 'topk' ? `topk (k = ${c.k})` : (c.activation ?? 'relu');
}

/**
 * Layers trained into a folder that already holds a set join it (a set can be
 * trained a few layers at a time); a set of another kind there is refused
 * before any work, not overwritten.
 */
function checkExistingSet(dir: string, o: ResolvedOptions): void {
  if (!isTranscoderSetFolder(dir)) return;
  const have = readTranscoderSetConfig(dir);
  const want = setConfig(o);
  if (
    have.activation !== want.activation ||
    have.k !== want.k ||
    have.featureInputHook !== want.featureInputHook ||
    have.featureOutputHook !== want.featureOutputHook
  ) {
    throw new LoupeError(
      `${dir}: already holds a transcoder set with activation ${activationWords(have)} from ${have.featureInputHook} to ${have.featureOutputHook}; ` +
        `these would be ${activationWords(want)}: train into another folder, or with the same settings to add layers`,
    );
  }
  for (const entry of fs.readdirSync(dir)) {
    const m = /^layer_(\d+)\.safetensors$/.exec(entry);
    if (!m || o.layers.includes(Number(m[1]))) continue;
    const file = SafetensorsFile.open(path.join(dir, entry));
    const enc = file.info('W_enc').shape;
    const skip = file.tensors.has('W_skip');
    if (enc[0] !== o.dTranscoder || enc[1] !== o.dModel || skip !== o.skip) {
      throw new LoupeError(
        `${path.join(dir, entry)}: has ${enc[0]} features ${skip ? 'with' : 'without'} a skip term; ` +
          `the layers trained now would have ${o.dTranscoder} ${o.skip ? 'with' : 'without'}: a set's layers must match`,
      );
    }
  }
}

function saveTrained(
  model: HookedModel,
  options: TrainTranscodersOptions,
  o: ResolvedOptions,
  sets: readonly Record<string, Tensor>[],
  firedCount: Float64Array,
  tokens: number,
  inputScales: readonly number[],
  outputScales: readonly number[],
): void {
  const d = o.dModel;
  const s = o.dTranscoder;
  const shape = { dModel: d, dTranscoder: s };
  o.layers.forEach((layer, i) => {
    const P = (p: StepParam): Float32Array => sets[i][io.param(p)].data;
    const sx = inputScales[i];
    const sy = outputScales[i];
    // The step saw x·sx and y·sy: pre = (x·sx)·W_enc + b_enc, y·sy ≈ f·W_dec + b_dec + (x·sx)·W_skipᵀ.
    const wEnc = P('W_enc');
    const encoder = new Float32Array(s * d);
    for (let j = 0; j < d; j++) for (let f = 0; f < s; f++) encoder[f * d + j] = wEnc[j * s + f] * sx;
    const params: TranscoderLayerParams = {
      W_enc: encoder,
      b_enc: Float32Array.from(P('b_enc')),
      W_dec: P('W_dec').map((v) => v / sy),
      b_dec: P('b_dec').map((v) => v / sy),
      threshold: o.architecture === 'jumprelu' ? P('log_threshold').map(Math.exp) : null,
      W_skip: o.skip ? P('W_skip').map((v) => (v * sx) / sy) : null,
    };
    writeTranscoderLayer(options.outDir, layer, shape, params, o.dtype);
  });
  const training = {
    trained_by: 'loupe',
    model: path.basename(model.checkpoint.dir),
    dataset_path: options.corpus,
    layers: o.layers,
    architecture: o.architecture,
    skip: o.skip,
    d_model: d,
    d_transcoder: s,
    k: o.architecture === 'topk' ? o.k : null,
    sparsity_coefficient: o.architecture === 'topk' ? null : o.l1,
    training_tokens: tokens,
    batch_size_tokens: o.batch,
    lr: o.lr,
    context_size: o.contextSize,
    seed: o.seed,
    dtype: o.dtype,
    input_scales: inputScales,
    output_scales: outputScales,
  };
  // Earlier runs into the same folder trained other layers: their records stay.
  const file = path.join(options.outDir, TRAINING_FILE);
  const earlier = fs.existsSync(file) ? readJsonObject(file, JSON_KINDS.trainingState).runs : undefined;
  const runs = (Array.isArray(earlier) ? earlier : []).filter(
    (r: unknown) =>
      typeof r === 'object' &&
      r !== null &&
      Array.isArray((r as { layers?: unknown }).layers) &&
      !(r as { layers: unknown[] }).layers.some((l) => o.layers.includes(l as number)),
  );
  writeFileAtomic(file, `${JSON.stringify({ runs: [...runs, training] }, null, 1)}\n`);
  // Each feature's share of the training tokens it fired on, log10 (as SAELens stores density).
  const density = new Map<string, TensorToWrite>();
  o.layers.forEach((layer, i) => {
    const counts = firedCount.subarray(i * s, (i + 1) * s);
    const data = Float32Array.from(counts, (c) => Math.log10(c / Math.max(tokens, 1) + 1e-10));
    density.set(`layer_${layer}`, { dtype: 'F32', shape: [s], data });
  });
  writeSafetensors(path.join(options.outDir, `feature_density_${o.layers.join('_')}.safetensors`), density);
  // config.yaml last: a folder with it is complete.
  writeTranscoderSetConfig(options.outDir, setConfig(o, path.basename(model.checkpoint.dir)));
}
