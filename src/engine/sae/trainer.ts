/**
 * Trains an SAE on activations streamed from a corpus (the 2024 recipe):
 * inputs scaled so that E‖x‖ = √d_in, ReLU with a decoder-norm-weighted L1
 * penalty whose coefficient warms up linearly, or TopK with the auxiliary
 * dead-latent loss; Adam with learning-rate warm-up and a linear decay over the
 * last part of training; gradient clipping. Each step is one ONNX graph run
 * (trainGraph.ts) on two alternating sets of buffers.
 *
 * Checkpoints are written every `checkpointEvery` steps into a fresh folder
 * swapped in for the previous one (safeWrite.ts), so a crash or a
 * cancellation never leaves a half-written checkpoint, and `resume` finds one
 * whichever step a kill hit; it continues from it (the shuffle buffer refills
 * from where the corpus left off). The result is
 * saved in SAELens's format with the input scaling folded into the weights.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancelledError, LoupeError } from '../errors';
import { isPresent } from '../inputFiles';
import { HookedModel } from '../model';
import { Feed, GraphSession } from '../runtime';
import { SafetensorsFile, TensorToWrite, safetensorsChunks } from '../safetensors';
import { checkOutputFolder, makeOutputFolder, recoverResult, writeResultFolder } from '../safeWrite';
import { Tensor } from '../tensor';
import { seededUniform } from '../random';
import { literal, nonNegInt, num, openObject, optional, str } from '../../shared/schema';
import { JSON_KINDS, readJsonFile } from '../untrustedJson';
import { ActivationBatches } from './activationBatches';
import { hookWidth } from './activations';
import { SaeConfig } from './config';
import { SAE_WEIGHTS_FILE, saveSae } from './sae';
import {
  METRICS,
  PARAMS,
  ParamName,
  StepArchitecture,
  TrainArchitecture,
  buildTrainGraph,
  io,
} from './trainGraph';

/** How a dictionary is trained on activations streamed from a corpus: the options SAEs and transcoders share. */
export interface StreamedTrainingOptions {
  /** A folder of text files, a .jsonl with "text" fields, or a text file. */
  readonly corpus: string;
  readonly outDir: string;
  readonly k?: number;
  readonly lr?: number;
  readonly batchSize?: number;
  readonly trainingTokens?: number;
  readonly contextSize?: number;
  /** Shuffle-buffer size in batches. */
  readonly bufferBatches?: number;
  readonly warmupSteps?: number;
  readonly l1WarmupFraction?: number;
  readonly decayFraction?: number;
  /** A latent that has not fired for this many tokens counts as dead. */
  readonly deadWindowTokens?: number;
  readonly checkpointEvery?: number;
  readonly seed?: number;
  readonly resume?: boolean;
  readonly threads?: number;
  readonly signal?: AbortSignal;
}

export interface TrainSaeOptions extends StreamedTrainingOptions {
  readonly hook: string;
  /** Default 'topk' (k = 32): the faster step (sparse decoding) and no L1 coefficient to tune. */
  readonly architecture?: TrainArchitecture;
  /** d_sae = expansion · d_in unless dSae is given. */
  readonly expansion?: number;
  readonly dSae?: number;
  readonly l1Coefficient?: number;
  readonly onProgress?: (p: TrainProgress) => void;
}

export interface TrainProgress {
  readonly step: number;
  readonly steps: number;
  readonly tokens: number;
  readonly activationsPerSecond: number;
  readonly loss: number;
  readonly mse: number;
  /** Fraction of variance unexplained on this batch. */
  readonly fvu: number;
  readonly l0: number;
  readonly deadFraction: number;
  readonly lr: number;
  readonly etaSeconds: number;
}

export interface TrainResult {
  readonly outDir: string;
  readonly steps: number;
  readonly tokens: number;
  readonly last: TrainProgress | null;
  readonly cancelled: boolean;
}

interface ResolvedOptions {
  architecture: TrainArchitecture;
  dIn: number;
  dSae: number;
  k: number;
  l1: number;
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
}

interface CheckpointState {
  step: number;
  tokens: number;
  epoch: number;
  documentsDone: number;
  normScalingFactor: number;
  options: ResolvedOptions;
  /** What the run reads, so a resume can be checked and offered without asking again (absent in older checkpoints). */
  hook?: string;
  corpus?: string;
}

/** A stopped training run's checkpoint, as a UI offers to resume it. */
export interface TrainingCheckpoint {
  readonly step: number;
  readonly steps: number;
  readonly tokens: number;
  readonly hook: string | null;
  readonly corpus: string | null;
}

export const CHECKPOINT = 'checkpoint';
const LOG_FILE = 'training_log.jsonl';

export async function trainSae(model: HookedModel, options: TrainSaeOptions): Promise<TrainResult> {
  const dIn = hookWidth(model, options.hook);
  checkOutputFolder(options.outDir, 'sae');
  const resumeState = options.resume ? readCheckpointState(options.outDir) : null;
  if (resumeState?.hook !== undefined && resumeState.hook !== options.hook) {
    throw new LoupeError(
      `${options.outDir}: the checkpoint trains an SAE on ${resumeState.hook}, not ${options.hook}; resume with its hook`,
    );
  }
  if (resumeState && resumeState.options.dIn !== dIn) {
    throw new LoupeError(
      `${options.outDir}: the checkpoint's SAE reads ${resumeState.options.dIn} values per token, but ${options.hook} has ${dIn} in this model; resume with the model it was trained on`,
    );
  }
  const o: ResolvedOptions = resumeState?.options ?? resolveOptions(model, dIn, options);
  const shapes: Record<ParamName, number[]> = {
    W_enc: [o.dIn, o.dSae],
    b_enc: [o.dSae],
    W_dec: [o.dSae, o.dIn],
    b_dec: [o.dIn],
  };
  makeOutputFolder(options.outDir);

  // ---- the step graph: its parameters are inputs, so it loads from memory ----
  const session = await GraphSession.create(
    buildTrainGraph({
      architecture: o.architecture,
      dIn: o.dIn,
      dSae: o.dSae,
      k: o.k,
      kAux: Math.min(o.dSae, Math.max(o.k, Math.floor(o.dIn / 2))),
      auxCoefficient: 1 / 32,
      auxRows: Math.min(o.batch, 256),
      beta1: 0.9,
      beta2: 0.999,
      adamEps: 1e-8,
      clipNorm: 1,
    }),
    { threads: options.threads ?? 0 },
  );

  // ---- state: two alternating buffer sets ----
  const makeSet = (): Record<string, Tensor> => {
    const set: Record<string, Tensor> = {};
    for (const p of PARAMS) {
      const n = shapes[p].reduce((a, b) => a * b, 1);
      for (const name of [io.param(p), io.m(p), io.v(p)])
        set[name] = { dims: shapes[p], data: new Float32Array(n) };
    }
    return set;
  };
  let current = makeSet();
  let next = makeSet();
  const lastFired = new Float64Array(o.dSae);
  const firedCount = new Float64Array(o.dSae);
  let step = 0;
  let tokens = 0;
  let epoch = 0;
  let documentsDone = 0;
  let scale = 0;
  if (resumeState) {
    const st = SafetensorsFile.open(path.join(options.outDir, CHECKPOINT, 'state.safetensors'));
    for (const name of Object.keys(current)) current[name].data.set(st.readF32(name));
    lastFired.set(st.readF32('last_fired'));
    firedCount.set(st.readF32('fired_count'));
    ({ step, tokens, epoch, documentsDone } = resumeState);
    scale = resumeState.normScalingFactor;
  }

  const batches = new ActivationBatches(model, {
    corpus: options.corpus,
    hooks: [options.hook],
    contextSize: o.contextSize,
    batch: o.batch,
    bufferRows: o.bufferRows,
    seed: o.seed,
    epoch,
    documentsDone,
    signal: options.signal,
  });
  const nextBatch = (): Promise<Float32Array> => batches.next();

  if (!resumeState) {
    // Scale so that E‖x‖ = √d_in, measured on the first batch; b_dec starts at its mean.
    const first = await nextBatch();
    let normSum = 0;
    const mean = new Float64Array(o.dIn);
    for (let r = 0; r < o.batch; r++) {
      let sq = 0;
      for (let j = 0; j < o.dIn; j++) {
        const v = first[r * o.dIn + j];
        sq += v * v;
        mean[j] += v;
      }
      normSum += Math.sqrt(sq);
    }
    scale = Math.sqrt(o.dIn) / (normSum / o.batch || 1);
    initialise(
      current,
      o,
      mean.map((m) => (m / o.batch) * scale),
      seededUniform(o.seed),
    );
    batches.unshift(first);
  }

  const log = fs.createWriteStream(path.join(options.outDir, LOG_FILE), { flags: resumeState ? 'a' : 'w' });
  const started = Date.now();
  const startTokens = tokens;
  let last: TrainProgress | null = null;
  let cancelled = false;
  const scalar = (v: number): Feed => ({ type: 'float32', dims: [], data: new Float32Array([v]) });
  const dead = new Float32Array(o.dSae);
  const checkpoint = (): void =>
    writeCheckpoint(options.outDir, current, lastFired, firedCount, {
      step,
      tokens,
      epoch: batches.epoch,
      documentsDone: batches.documentsDone,
      normScalingFactor: scale,
      options: o,
      hook: options.hook,
      corpus: options.corpus,
    });
  try {
    while (step < o.steps) {
      if (options.signal?.aborted) {
        cancelled = true;
        break;
      }
      const x = await nextBatch();
      for (let i = 0; i < x.length; i++) x[i] *= scale;
      step++;
      const { lr, l1 } = stepSchedule(o, step);
      for (let i = 0; i < o.dSae; i++) dead[i] = tokens - lastFired[i] > o.deadWindow ? 1 : 0;
      const feeds: Record<string, Feed> = {
        x: { type: 'float32', dims: [o.batch, o.dIn], data: x },
        lr: scalar(lr),
        l1: scalar(l1),
        bc1: scalar(1 / (1 - 0.9 ** step)),
        bc2: scalar(1 / (1 - 0.999 ** step)),
        dead: { type: 'float32', dims: [o.dSae], data: dead },
      };
      for (const [name, t] of Object.entries(current))
        feeds[name] = { type: 'float32', dims: t.dims, data: t.data };
      const into: Record<string, Tensor> = {};
      for (const [name, t] of Object.entries(next)) into[io.out(name)] = t;
      const out = await session.run(feeds, [...Object.keys(into), ...METRICS], into);
      [current, next] = [next, current];
      tokens += o.batch;
      const fired = out.get('fired')!.data;
      let deadCount = 0;
      for (let i = 0; i < o.dSae; i++) {
        if (fired[i] > 0) lastFired[i] = tokens;
        firedCount[i] += fired[i];
        if (tokens - lastFired[i] > o.deadWindow) deadCount++;
      }
      const mse = out.get('mse')!.data[0];
      const elapsed = (Date.now() - started) / 1000;
      const rate = (tokens - startTokens) / Math.max(elapsed, 1e-9);
      last = {
        step,
        steps: o.steps,
        tokens,
        activationsPerSecond: rate,
        loss: out.get('loss')!.data[0],
        mse,
        fvu: mse / batchVariance(x, o.batch, o.dIn),
        l0: out.get('l0')!.data[0],
        deadFraction: deadCount / o.dSae,
        lr,
        etaSeconds: ((o.steps - step) * o.batch) / Math.max(rate, 1e-9),
      };
      options.onProgress?.(last);
      log.write(`${JSON.stringify(last)}\n`);
      if (step % o.checkpointEvery === 0 && step < o.steps) {
        checkpoint();
      }
    }
  } catch (err) {
    if (!(err instanceof CancelledError)) throw err;
    cancelled = true;
  } finally {
    // Flushed before the SAE's swap carries the log into the new folder.
    await new Promise<void>((resolve) => log.end(resolve));
    await batches.close();
    await session.release();
  }
  if (cancelled) {
    // Keep what was learned: a checkpoint to resume from, never a half-written one.
    checkpoint();
    return { outDir: options.outDir, steps: step, tokens, last, cancelled };
  }
  // The swap that brings in the SAE drops the checkpoint with it (safeWrite.ts: the SAE owns it).
  saveTrained(model, options, o, current, firedCount, tokens, scale);
  return { outDir: options.outDir, steps: step, tokens, last, cancelled };
}

/** The most f32 values in one weight matrix or activation buffer (1 GiB): beyond, a laptop runs out of memory. */
const MAX_MATRIX_VALUES = 2 ** 28;

function resolveOptions(model: HookedModel, dIn: number, options: TrainSaeOptions): ResolvedOptions {
  const architecture = options.architecture ?? 'topk';
  const dSae = options.dSae ?? Math.round((options.expansion ?? 8) * dIn);
  const batch = options.batchSize ?? 4096;
  const trainingTokens = options.trainingTokens ?? 2_000_000;
  const steps = Math.max(1, Math.ceil(trainingTokens / batch));
  const positive = (v: number, what: string): number => {
    if (!(v > 0) || !Number.isFinite(v)) throw new LoupeError(`${what} must be a positive number, not ${v}`);
    return v;
  };
  positive(dSae, 'd_sae');
  positive(batch, 'the batch size');
  // Sizes checked against the hook's width before anything is allocated.
  if (!Number.isInteger(dSae))
    throw new LoupeError(`d_sae must be an integer, not ${dSae} (expansion × d_in)`);
  if (dSae * dIn > MAX_MATRIX_VALUES) {
    throw new LoupeError(
      `d_sae ${dSae} × d_in ${dIn} is ${dSae * dIn} weights per matrix, more than the ${MAX_MATRIX_VALUES} Loupe trains; choose a smaller --d-sae or --expansion`,
    );
  }
  const bufferBatches = options.bufferBatches ?? 16;
  if (batch * bufferBatches * dIn > MAX_MATRIX_VALUES) {
    throw new LoupeError(
      `a batch of ${batch} tokens (buffered ${bufferBatches} times, ${dIn} values each) would hold ${batch * bufferBatches * dIn} activations, more than the ${MAX_MATRIX_VALUES} Loupe keeps; choose a smaller --batch`,
    );
  }
  const k = options.k ?? 32;
  if (architecture === 'topk' && (k < 1 || k > dSae))
    throw new LoupeError(`TopK's k must be between 1 and d_sae (${dSae}), not ${k}`);
  return {
    architecture,
    dIn,
    dSae,
    k,
    l1: positive(options.l1Coefficient ?? 5, 'the L1 coefficient'),
    lr: positive(options.lr ?? 4e-4, 'the learning rate'),
    batch,
    steps,
    contextSize: Math.min(options.contextSize ?? 128, model.spec.nCtx),
    bufferRows: batch * bufferBatches,
    warmup: Math.max(1, options.warmupSteps ?? Math.ceil(steps * 0.02)),
    l1Warmup: Math.max(1, Math.ceil(steps * (options.l1WarmupFraction ?? 0.05))),
    decayFrom: Math.floor(steps * (1 - (options.decayFraction ?? 0.2))),
    deadWindow: options.deadWindowTokens ?? Math.max(batch * 4, Math.min(10_000_000, trainingTokens / 5)),
    checkpointEvery: Math.max(1, options.checkpointEvery ?? 100),
    seed: options.seed ?? 42,
  };
}

/** The step's learning rate (warm-up, then a linear decay at the end) and sparsity coefficient (warmed up). */
export function stepSchedule(
  o: Pick<ResolvedOptions, 'lr' | 'l1' | 'steps' | 'warmup' | 'l1Warmup' | 'decayFrom'>,
  step: number,
): { lr: number; l1: number } {
  const lr =
    o.lr *
    Math.min(1, step / o.warmup) *
    (step > o.decayFrom ? (o.steps - step) / (o.steps - o.decayFrom) : 1);
  return { lr, l1: o.l1 * Math.min(1, step / o.l1Warmup) };
}

/** Decoder rows in random directions with norm 0.1 (unit for TopK); the encoder starts as its transpose. */
export function initialise(
  set: Record<string, Tensor>,
  o: { readonly architecture: StepArchitecture; readonly dIn: number; readonly dSae: number },
  bDec: Float64Array,
  random: () => number,
): void {
  const wDec = set.W_dec.data;
  const wEnc = set.W_enc.data;
  const rowNorm = o.architecture === 'topk' ? 1 : 0.1;
  for (let i = 0; i < o.dSae; i++) {
    let sq = 0;
    for (let j = 0; j < o.dIn; j++) {
      // Box–Muller normal samples.
      const v = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
      wDec[i * o.dIn + j] = v;
      sq += v * v;
    }
    const s = rowNorm / Math.sqrt(sq);
    for (let j = 0; j < o.dIn; j++) {
      wDec[i * o.dIn + j] *= s;
      wEnc[j * o.dSae + i] = wDec[i * o.dIn + j];
    }
  }
  set.b_dec.data.set(bDec);
}

/** Total variance of a batch (sum over dimensions), the denominator of the FVU. */
export function batchVariance(x: Float32Array, n: number, d: number): number {
  let total = 0;
  for (let j = 0; j < d; j++) {
    let mean = 0;
    for (let r = 0; r < n; r++) mean += x[r * d + j];
    mean /= n;
    let v = 0;
    for (let r = 0; r < n; r++) {
      const e = x[r * d + j] - mean;
      v += e * e;
    }
    total += v / n;
  }
  return total || 1;
}

/** A checkpoint folder replaced in one step (safeWrite.ts), so a kill leaves the last one or the new one. */
export function writeCheckpoint(
  outDir: string,
  set: Record<string, Tensor>,
  lastFired: Float64Array,
  firedCount: Float64Array,
  state: object,
): void {
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, t] of Object.entries(set))
    tensors.set(name, { dtype: 'F32', shape: t.dims, data: t.data });
  tensors.set('last_fired', { dtype: 'F32', shape: [lastFired.length], data: Float32Array.from(lastFired) });
  tensors.set('fired_count', {
    dtype: 'F32',
    shape: [firedCount.length],
    data: Float32Array.from(firedCount),
  });
  writeResultFolder(path.join(outDir, CHECKPOINT), 'checkpoint', (out) => {
    out.file('state.safetensors', safetensorsChunks(tensors));
    out.file('state.json', JSON.stringify(state, null, 2));
  });
}

/** Finishes a swap a kill cut short: the training folder's own (the saved SAE), then the checkpoint's. */
function recoverTraining(outDir: string): void {
  recoverResult(outDir);
  recoverResult(path.join(outDir, CHECKPOINT));
}

/** The checkpoint a stopped run left in `outDir`, or null when there is none. */
export function readTrainingCheckpoint(outDir: string): TrainingCheckpoint | null {
  recoverTraining(outDir);
  if (!isPresent(path.join(outDir, CHECKPOINT, 'state.json'))) return null;
  const state = readCheckpointState(outDir);
  const count = (v: unknown): number => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0);
  return {
    step: count(state.step),
    steps: count(state.options?.steps),
    tokens: count(state.tokens),
    hook: typeof state.hook === 'string' ? state.hook : null,
    corpus: typeof state.corpus === 'string' ? state.corpus : null,
  };
}

function readCheckpointState(outDir: string): CheckpointState {
  recoverTraining(outDir);
  const file = path.join(outDir, CHECKPOINT, 'state.json');
  if (!isPresent(file)) {
    if (isPresent(path.join(outDir, SAE_WEIGHTS_FILE))) {
      throw new LoupeError(
        `${outDir}: the training there finished (the SAE is saved); nothing to resume: drop --resume to train again`,
      );
    }
    throw new LoupeError(`${outDir}: no checkpoint to resume from`);
  }
  return readJsonFile(file, JSON_KINDS.trainingState, checkpointStateSchema);
}

/** What a resume reads from state.json, checked field by field: a damaged file is named, never trusted. */
const checkpointStateSchema = openObject({
  step: nonNegInt,
  tokens: nonNegInt,
  epoch: nonNegInt,
  documentsDone: nonNegInt,
  normScalingFactor: num,
  options: openObject({
    architecture: literal('relu', 'topk'),
    dIn: nonNegInt,
    dSae: nonNegInt,
    k: nonNegInt,
    l1: num,
    lr: num,
    batch: nonNegInt,
    steps: nonNegInt,
    contextSize: nonNegInt,
    bufferRows: nonNegInt,
    warmup: num,
    l1Warmup: nonNegInt,
    decayFrom: nonNegInt,
    deadWindow: num,
    checkpointEvery: nonNegInt,
    seed: num,
  }),
  hook: optional(str),
  corpus: optional(str),
});

function saveTrained(
  model: HookedModel,
  options: TrainSaeOptions,
  o: ResolvedOptions,
  set: Record<string, Tensor>,
  firedCount: Float64Array,
  tokens: number,
  scale: number,
): void {
  const hookLayer = /^blocks\.(\d+)\./.exec(options.hook);
  const config: SaeConfig = {
    architecture: o.architecture === 'relu' ? 'standard' : 'topk',
    dIn: o.dIn,
    dSae: o.dSae,
    dtype: 'float32',
    applyBDecToInput: false,
    normalizeActivations: 'expected_average_only_in',
    normScalingFactor: scale,
    k: o.architecture === 'topk' ? o.k : null,
    rescaleActsByDecoderNorm: false,
    finetuningScalingFactor: false,
    reshapeActivations: options.hook.endsWith('attn.hook_z') ? 'hook_z' : 'none',
    hookName: options.hook,
    hookLayer: hookLayer ? Number(hookLayer[1]) : null,
    modelName: path.basename(model.checkpoint.dir),
    prependBos: true,
    contextSize: o.contextSize,
    datasetPath: options.corpus,
    modelFromPretrainedKwargs: { center_writing_weights: false },
    centerWritingWeights: false,
    centerSource: 'config',
    metadata: {
      trained_by: 'loupe',
      training_tokens: tokens,
      l1_coefficient: o.l1,
      lr: o.lr,
      train_batch_size_tokens: o.batch,
    },
  };
  const params = new Map<string, Tensor>(PARAMS.map((p) => [p, set[io.param(p)]]));
  // SAELens stores log10 feature density.
  const sparsity = Float32Array.from(firedCount, (c) => Math.log10(c / Math.max(tokens, 1) + 1e-10));
  saveSae(options.outDir, { config, params, sparsity, normScalingFactor: scale });
}
