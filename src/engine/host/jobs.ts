/**
 * The long jobs the extension runs in a second engine process (the "jobs
 * engine"), so that analysing the open file never waits for them: training
 * an SAE or a transcoder set, building an SAE's feature dashboards, and exporting activations.
 * Each opens the model itself (the compiled-model cache makes that quick),
 * reports progress as one line a notification can show, and stops when its
 * AbortSignal fires.
 *
 * Nothing is lost when a job is cancelled or fails: training stops at a
 * checkpoint that `resume` continues; every result is written whole beside
 * its place and swapped in (safeWrite.ts), so a cancelled or killed job
 * leaves the previous result as it was; an output path that holds something
 * other than a previous result of the same kind is refused before the job
 * starts, by the same checks the CLI's `--out` gets.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancelledError, LoupeError } from '../errors';
import { BuildProgress, buildFeatureDatabase } from '../features/build';
import { hookShape, tokenAxes } from '../hooks';
import { HookedModel } from '../model';
import { TensorToWrite, writeSafetensors } from '../safetensors';
import { checkOutputFile } from '../safeWrite';
import { Sae } from '../sae/sae';
import { TrainProgress, trainSae } from '../sae/trainer';
import { trainTranscoders } from '../transcoders/trainer';
import { TunedLensProgress, trainTunedLens } from '../lens/tunedLensTrainer';
import { Tensor, cropBatchItem, numel } from '../tensor';
import { EngineParams, EngineResult } from './protocol';
import { Progress } from './session';

/** Progress lines sent at most this often (a tiny SAE trains hundreds of steps a second). */
const PROGRESS_INTERVAL_MS = 200;
/** Export windows per forward pass. */
const EXPORT_WINDOWS_PER_RUN = 4;

export async function withModel<T>(
  params: { model: string; threads: number; cacheDir: string | null },
  progress: Progress,
  work: (model: HookedModel) => Promise<T>,
): Promise<T> {
  progress(`Opening ${path.basename(params.model)}`, null);
  const model = await HookedModel.open(params.model, {
    threads: params.threads > 0 ? params.threads : undefined,
    cacheDir: params.cacheDir ?? undefined,
    // Checking the compiled-model cache is quick; converting the weights (first open only) is not.
    onProgress: (p) => {
      if (p.stage === 'weights') {
        progress(`Converting ${path.basename(params.model)}'s weights: ${p.done}/${p.total}`, null);
      }
    },
  });
  try {
    return await work(model);
  } finally {
    await model.dispose();
  }
}

/** Calls `send` at most every PROGRESS_INTERVAL_MS, and always for the call with `last` set. */
function throttled<A extends unknown[]>(send: (...args: A) => void): (last: boolean, ...args: A) => void {
  let at = 0;
  return (last, ...args) => {
    const now = Date.now();
    if (!last && now - at < PROGRESS_INTERVAL_MS) return;
    at = now;
    send(...args);
  };
}

export async function trainSaeJob(
  params: EngineParams<'trainSae'>,
  signal: AbortSignal,
  progress: Progress,
): Promise<EngineResult<'trainSae'>> {
  const t0 = performance.now();
  const report = throttled((p: TrainProgress) => progress(trainingLine(p), p.step / p.steps));
  return withModel(params, progress, async (model) => {
    progress(params.resume ? 'Resuming from the checkpoint' : 'Reading the corpus', null);
    const result = await trainSae(model, {
      hook: params.hook,
      corpus: params.corpus,
      outDir: params.outDir,
      architecture: params.architecture,
      expansion: params.expansion,
      k: params.k,
      ...trainingRunOptions(params, signal, report),
    });
    return trainingRunResult(result, t0, ' or another hook');
  });
}

export async function trainTranscodersJob(
  params: EngineParams<'trainTranscoders'>,
  signal: AbortSignal,
  progress: Progress,
): Promise<EngineResult<'trainTranscoders'>> {
  const t0 = performance.now();
  const report = throttled((p: TrainProgress) => progress(trainingLine(p), p.step / p.steps));
  return withModel(params, progress, async (model) => {
    progress(params.resume ? 'Resuming from the checkpoint' : 'Reading the corpus', null);
    const layers =
      params.layers.length > 0 ? params.layers : Array.from({ length: model.spec.nLayers }, (_, i) => i);
    const missing = layers.find((l) => l >= model.spec.nLayers);
    if (missing !== undefined) {
      throw new LoupeError(
        `layer ${missing}: ${path.basename(params.model)} has ${model.spec.nLayers} layers`,
      );
    }
    const result = await trainTranscoders(model, {
      layers,
      corpus: params.corpus,
      outDir: params.outDir,
      architecture: params.architecture,
      skip: params.skip,
      expansion: params.expansion,
      k: params.k,
      ...trainingRunOptions(params, signal, report),
    });
    const last = result.last;
    return {
      ...trainingRunResult(result, t0, ''),
      layers: (last?.layers ?? []).map((l) => ({
        layer: l.layer,
        fvu: l.fvu,
        l0: l.l0,
        deadFraction: l.deadFraction,
      })),
      seconds: (performance.now() - t0) / 1000,
    };
  });
}

/** The options both training jobs pass the same way: budget, batching, checkpoints, threads, cancel and progress. */
function trainingRunOptions(
  params: EngineParams<'trainSae'> | EngineParams<'trainTranscoders'>,
  signal: AbortSignal,
  report: (final: boolean, p: TrainProgress) => void,
) {
  return {
    trainingTokens: params.trainingTokens,
    batchSize: params.batchSize ?? undefined,
    contextSize: params.contextSize ?? undefined,
    checkpointEvery: params.checkpointEvery ?? undefined,
    seed: params.seed ?? undefined,
    resume: params.resume,
    threads: params.threads > 0 ? params.threads : undefined,
    signal,
    onProgress: (p: TrainProgress) => report(p.step === p.steps, p),
  };
}

/** A finished run as both training jobs report it; a run whose last figures are not finite diverged. */
function trainingRunResult(
  result: { outDir: string; steps: number; tokens: number; last: TrainProgress | null },
  t0: number,
  hint: string,
) {
  const last = result.last;
  if (last && ![last.loss, last.fvu, last.l0].every(Number.isFinite)) {
    throw new LoupeError(
      `training diverged (loss ${last.loss} at step ${last.step}); try a lower learning rate${hint}`,
    );
  }
  return {
    outDir: path.resolve(result.outDir),
    steps: result.steps,
    tokens: result.tokens,
    metrics: last && {
      step: last.step,
      steps: last.steps,
      loss: last.loss,
      fvu: last.fvu,
      l0: last.l0,
      deadFraction: last.deadFraction,
      activationsPerSecond: last.activationsPerSecond,
    },
    seconds: (performance.now() - t0) / 1000,
  };
}

/** One line for a training notification: where it is, how well it reconstructs, and how long is left. */
export function trainingLine(p: TrainProgress): string {
  return (
    `step ${p.step}/${p.steps} · loss ${p.loss.toFixed(3)} · FVU ${p.fvu.toFixed(3)} · ` +
    `L0 ${p.l0.toFixed(1)} · dead ${(100 * p.deadFraction).toFixed(1)}% · ` +
    `${Math.round(p.activationsPerSecond).toLocaleString('en-US')} act/s · ETA ${duration(p.etaSeconds)}`
  );
}

function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return `${s}s`;
  if (s < 5400) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** How much of a build each stage takes, roughly, so one bar runs through all of them. */
const STAGE_SHARE: Record<BuildProgress['stage'], number> = {
  pass: 0.7,
  logits: 0.05,
  similar: 0.05,
  labels: 0.04,
  clusters: 0.04,
  map: 0.08,
  write: 0.04,
};
const STAGE_TEXT: Record<BuildProgress['stage'], string> = {
  pass: 'Reading the corpus',
  logits: 'Logit effects',
  similar: 'Similar features',
  labels: 'Labelling features',
  clusters: 'Clustering',
  map: 'Laying out the map',
  write: 'Writing dashboards',
};

export async function buildDashboardsJob(
  params: EngineParams<'buildDashboards'>,
  signal: AbortSignal,
  progress: Progress,
): Promise<EngineResult<'buildDashboards'>> {
  const t0 = performance.now();
  const threads = params.threads > 0 ? params.threads : undefined;
  const sae = Sae.load(params.sae, { threads, cacheDir: params.cacheDir ?? undefined });
  try {
    const report = throttled((p: BuildProgress) => {
      const stages = Object.keys(STAGE_SHARE) as BuildProgress['stage'][];
      const before = stages.slice(0, stages.indexOf(p.stage)).reduce((a, s) => a + STAGE_SHARE[s], 0);
      const within = p.total > 0 ? Math.min(1, p.done / p.total) : 0;
      const counts =
        p.stage === 'clusters'
          ? ''
          : `: ${p.done.toLocaleString('en-US')}/${p.total.toLocaleString('en-US')}`;
      const unit = p.stage === 'pass' ? ' tokens' : p.stage === 'map' ? ' epochs' : '';
      progress(
        `${STAGE_TEXT[p.stage]}${counts}${counts ? unit : ''}`,
        before + STAGE_SHARE[p.stage] * within,
      );
    });
    return await withModel(params, progress, async (model) => {
      const built = await buildFeatureDatabase(model, sae, params.corpus, {
        maxTokens: params.maxTokens ?? undefined,
        contextSize: params.contextSize ?? undefined,
        seed: params.seed ?? undefined,
        threads,
        signal,
        onProgress: (p) => report(p.done >= p.total, p),
      });
      const m = built.meta;
      return {
        dir: built.dir,
        features: m.dSae,
        liveFeatures: m.liveFeatures,
        tokens: m.tokens,
        documents: m.documents,
        clusters: typeof m.options.clusters === 'number' ? m.options.clusters : 0,
        seconds: (performance.now() - t0) / 1000,
      };
    });
  } finally {
    await sae.dispose();
  }
}

/**
 * Activations of a text at the chosen hooks, as TransformerLens's
 * `run_with_cache` names and shapes them ([batch, pos, ...]), plus `tokens`
 * [batch, pos] and `attention_mask` [batch, pos]. A text longer than the
 * model's context is cut into consecutive windows, each starting with BOS,
 * which become the batch; the last one is right-padded, and its padded
 * positions hold zeros in every tensor (and 0 in the mask).
 */
export async function exportActivationsJob(
  params: EngineParams<'exportActivations'>,
  signal: AbortSignal,
  progress: Progress,
): Promise<EngineResult<'exportActivations'>> {
  if (params.hooks.length === 0 && !params.logits) {
    throw new LoupeError('choose at least one hook (or the logits) to export');
  }
  checkOutputFile(params.out, 'safetensors');
  return withModel(params, progress, async (model) => {
    const hooks = params.hooks.map((name) => model.hookByName(name)); // unknown names fail here, by name
    const tokens = await model.tokenize(params.text);
    const prefix = tokens.length > 0 && tokens[0].start === 0 && tokens[0].end === 0 ? 1 : 0;
    const body = tokens.slice(prefix).map((t) => t.id);
    if (body.length === 0) throw new LoupeError('the text has no tokens to export (is it empty?)');
    const head = tokens.slice(0, prefix).map((t) => t.id);
    const perWindow = model.spec.nCtx - prefix;
    const windows: number[][] = [];
    for (let i = 0; i < body.length; i += perWindow) windows.push([...head, ...body.slice(i, i + perWindow)]);
    const B = windows.length;
    const T = windows[0].length;

    const out = new Map<string, Tensor>();
    for (const h of hooks) {
      const dims = hookShape(model.spec, h, B, T);
      out.set(h.name, { dims, data: new Float32Array(numel(dims)) });
    }
    if (params.logits) {
      const dims = [B, T, model.spec.dVocab];
      out.set('logits', { dims, data: new Float32Array(numel(dims)) });
    }
    const report = throttled((done: number) =>
      progress(`Window ${done}/${B} (${tokens.length.toLocaleString('en-US')} tokens)`, done / B),
    );
    for (let b = 0; b < B; b += EXPORT_WINDOWS_PER_RUN) {
      if (signal.aborted) throw new CancelledError();
      const batch = windows.slice(b, b + EXPORT_WINDOWS_PER_RUN);
      const names = hooks.map((h) => h.name);
      const run = params.logits
        ? await model.runPadded(batch, { hooks: names })
        : { ...(await model.runHooksPadded(batch, names)), logits: null };
      batch.forEach((ids, k) => {
        for (const h of hooks) {
          const item = cropBatchItem(run.hooks.get(h.name)!, k, tokenAxes(h), ids.length);
          placeBatchItem(out.get(h.name)!, b + k, item);
        }
        if (run.logits)
          placeBatchItem(out.get('logits')!, b + k, cropBatchItem(run.logits, k, [1], ids.length));
      });
      report(b + batch.length >= B, Math.min(B, b + batch.length));
    }

    const ids = new BigInt64Array(B * T);
    const mask = new BigInt64Array(B * T);
    windows.forEach((w, b) =>
      w.forEach((id, t) => {
        ids[b * T + t] = BigInt(id);
        mask[b * T + t] = 1n;
      }),
    );
    const tensors = new Map<string, TensorToWrite>();
    for (const [name, t] of out) tensors.set(name, { dtype: 'F32', shape: t.dims, data: t.data });
    tensors.set('tokens', { dtype: 'I64', shape: [B, T], data: ids });
    tensors.set('attention_mask', { dtype: 'I64', shape: [B, T], data: mask });
    if (signal.aborted) throw new CancelledError();
    progress(`Writing ${path.basename(params.out)}`, 1);
    const file = path.resolve(params.out);
    writeSafetensors(file, tensors, {
      format: 'pt',
      model: model.checkpoint.dir,
      ...(params.source !== null ? { source: params.source } : {}),
      windows: String(B),
    });
    return {
      out: file,
      tokens: tokens.length,
      windows: B,
      tensors: [...tensors].map(([name, t]) => ({ name, shape: [...t.shape] })),
      bytes: fs.statSync(file).size,
    };
  });
}

/** Trains a tuned lens; a cancelled run writes nothing (the trainer saves only at the end). */
export async function trainTunedLensJob(
  params: EngineParams<'trainTunedLens'>,
  signal: AbortSignal,
  progress: Progress,
): Promise<EngineResult<'trainTunedLens'>> {
  const t0 = performance.now();
  return withModel(params, progress, async (model) => {
    progress('Reading the corpus', null);
    const report = throttled((p: TunedLensProgress) => {
      const kl = p.kl.map((x) => x.toFixed(2)).join(' ');
      progress(
        `step ${p.step}/${p.steps} · KL per layer ${kl} · ${Math.round(p.tokensPerSecond).toLocaleString('en-US')} tok/s · ETA ${duration(p.etaSeconds)}`,
        p.step / p.steps,
      );
    });
    const result = await trainTunedLens(model, {
      corpus: params.corpus,
      outDir: params.outDir,
      steps: params.steps ?? undefined,
      batchTokens: params.batchTokens ?? undefined,
      threads: params.threads > 0 ? params.threads : undefined,
      signal,
      onProgress: (p) => report(p.step === p.steps, p),
    });
    if (result.cancelled) throw new CancelledError();
    return {
      outDir: path.resolve(result.outDir),
      steps: result.steps,
      tokens: result.tokens,
      initialKl: [...result.initialKl],
      finalKl: [...result.finalKl],
      seconds: (performance.now() - t0) / 1000,
    };
  });
}

/** Copies a cropped batch item [1, ...] into batch row b of `into`, whose token axes may be longer (zeros stay). */
function placeBatchItem(into: Tensor, b: number, item: Tensor): void {
  const rank = into.dims.length;
  const strides = new Array<number>(rank);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    strides[i] = s;
    s *= into.dims[i];
  }
  const rowLen = item.dims[rank - 1];
  let o = 0;
  const walk = (axis: number, offset: number): void => {
    if (axis === rank - 1) {
      into.data.set(item.data.subarray(o, o + rowLen), offset);
      o += rowLen;
      return;
    }
    for (let i = 0; i < item.dims[axis]; i++) walk(axis + 1, offset + i * strides[axis]);
  };
  walk(1, b * strides[0]);
}
