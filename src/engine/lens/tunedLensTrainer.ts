/**
 * Trains a tuned lens on a corpus: every layer's translator starts at zero
 * (so step 0 is the logit lens) and learns to minimise the forward KL from
 * the model's final distribution to the lens's, with Adam, a short linear
 * warm-up and a linear decay to zero (tuned-lens itself uses SGD with
 * Nesterov momentum on far larger batches than a CPU affords; Adam gets
 * there in fewer, smaller steps). Each step reads `batchTokens` positions'
 * residual streams (BOS positions left out: the attention sink's outsized
 * norm is not text) from consecutive windows of the corpus, cycling through
 * it as often as needed, and runs the step graph (tunedLensStep.ts) once per
 * layer. Progress after every step; cancellation between steps, in which
 * case nothing is written. The result is saved as a tuned-lens folder
 * (tunedLens.ts).
 */
import * as path from 'node:path';
import { WEIGHTS_FILE } from '../compile';
import { readCorpus } from '../corpus';
import { CancelledError, LoupeError } from '../errors';
import { HookedModel } from '../model';
import { Feed, GraphSession } from '../runtime';
import { contextWindows } from '../sae/activations';
import { Tensor } from '../tensor';
import { residualHook } from './positions';
import { TunedLens } from './tunedLens';
import { ADAM, buildTunedLensStepGraph, stepIo } from './tunedLensStep';
import { checkOutputFolder, writeFileAtomic } from '../safeWrite';

export interface TrainTunedLensOptions {
  /** A folder of text files, a .jsonl with "text" fields, or a text file. */
  readonly corpus: string;
  /** Where the lens is saved (config.json + params.safetensors). */
  readonly outDir: string;
  /** Default 250 (tuned-lens's default). */
  readonly steps?: number;
  /** Positions per step; default 1024. */
  readonly batchTokens?: number;
  /** Adam's peak learning rate; default 3e-3. */
  readonly lr?: number;
  /** Window length; default the model's context. */
  readonly contextSize?: number;
  readonly threads?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: TunedLensProgress) => void;
}

export interface TunedLensProgress {
  readonly step: number;
  readonly steps: number;
  readonly tokens: number;
  /** This step's KL(final ‖ lens) per layer 0..L-1, before the update (at step 1: the logit lens's). */
  readonly kl: readonly number[];
  readonly tokensPerSecond: number;
  readonly etaSeconds: number;
}

export interface TrainTunedLensResult {
  readonly lens: TunedLens | null;
  readonly outDir: string;
  readonly steps: number;
  readonly tokens: number;
  /** KL per layer at the first step: the logit lens's. */
  readonly initialKl: readonly number[];
  /** Mean KL per layer over the last tenth of the steps. */
  readonly finalKl: readonly number[];
  readonly cancelled: boolean;
}

const WARMUP_FRACTION = 0.05;

export async function trainTunedLens(
  model: HookedModel,
  options: TrainTunedLensOptions,
): Promise<TrainTunedLensResult> {
  const spec = model.spec;
  const { nLayers: L, dModel: d } = spec;
  const steps = options.steps ?? 250;
  const batchTokens = options.batchTokens ?? 1024;
  const peakLr = options.lr ?? 3e-3;
  for (const [name, v] of [
    ['steps', steps],
    ['batch tokens', batchTokens],
  ] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new LoupeError(`${name} must be a positive integer, not ${v}`);
  }
  if (!(peakLr > 0)) throw new LoupeError(`the learning rate must be positive, not ${peakLr}`);
  checkOutputFolder(options.outDir, 'tuned-lens');
  const lens = TunedLens.identity(model);

  const file = path.join(model.compiled.dir, 'graph-lens-tuned-step.onnx');
  writeFileAtomic(file, buildTunedLensStepGraph(spec, model.compiled.weights, WEIGHTS_FILE));
  const session = await GraphSession.create(file, { threads: options.threads ?? 0, prepack: model.prepack });

  // Parameters and Adam moments per layer, in two alternating sets (an output never overwrites an input being read).
  const makeSet = (): Record<string, Tensor> => ({
    W: { dims: [d, d], data: new Float32Array(d * d) },
    b: { dims: [d], data: new Float32Array(d) },
    [stepIo.m('W')]: { dims: [d, d], data: new Float32Array(d * d) },
    [stepIo.v('W')]: { dims: [d, d], data: new Float32Array(d * d) },
    [stepIo.m('b')]: { dims: [d], data: new Float32Array(d) },
    [stepIo.v('b')]: { dims: [d], data: new Float32Array(d) },
  });
  const sets = Array.from({ length: L }, () => [makeSet(), makeSet()]);

  const batches = residualBatches(model, options.corpus, batchTokens, options.contextSize, options.signal);
  const klHistory: number[][] = [];
  const started = Date.now();
  let tokens = 0;
  let step = 0;
  let cancelled = false;
  try {
    while (step < steps) {
      if (options.signal?.aborted) {
        cancelled = true;
        break;
      }
      const next = await batches.next();
      if (next.done) throw new LoupeError(`${options.corpus}: the corpus yields no tokens`);
      const batch = next.value;
      step++;
      const t = step;
      const lr = peakLr * schedule(step, steps);
      const scalar = (v: number): Feed => ({ type: 'float32', dims: [], data: new Float32Array([v]) });
      const kl: number[] = [];
      for (let l = 0; l < L; l++) {
        const [current, following] = sets[l];
        const feeds: Record<string, Feed> = {
          h: { type: 'float32', dims: [batchTokens, d], data: batch.layers[l] },
          final: { type: 'float32', dims: [batchTokens, d], data: batch.final },
          lr: scalar(lr),
          bc1: scalar(1 / (1 - ADAM.beta1 ** t)),
          bc2: scalar(1 / (1 - ADAM.beta2 ** t)),
        };
        for (const [name, tensor] of Object.entries(current)) feeds[name] = { type: 'float32', ...tensor };
        const into: Record<string, Tensor> = {};
        for (const name of Object.keys(following)) into[stepIo.next(name)] = following[name];
        const fetch = [...Object.keys(following).map((n) => stepIo.next(n)), 'kl'];
        const res = await session.run(feeds, fetch, into);
        kl.push(res.get('kl')!.data[0]);
        sets[l] = [following, current];
      }
      tokens += batchTokens;
      klHistory.push(kl);
      const elapsed = (Date.now() - started) / 1000;
      options.onProgress?.({
        step,
        steps,
        tokens,
        kl,
        tokensPerSecond: tokens / Math.max(elapsed, 1e-9),
        etaSeconds: (elapsed / step) * (steps - step),
      });
    }
  } catch (err) {
    if (!(err instanceof CancelledError)) throw err;
    cancelled = true;
  } finally {
    await session.release();
    await batches.return(undefined);
  }

  const initialKl = klHistory[0] ?? [];
  const tail = klHistory.slice(Math.floor(klHistory.length * 0.9));
  const finalKl = Array.from(
    { length: L },
    (_, l) => tail.reduce((a, k) => a + k[l], 0) / Math.max(1, tail.length),
  );
  if (cancelled)
    return { lens: null, outDir: options.outDir, steps: step, tokens, initialKl, finalKl, cancelled };
  const trained = new TunedLens(
    {
      ...lens.config,
      loupe_training: {
        steps,
        tokens,
        batch_tokens: batchTokens,
        lr: peakLr,
        optimizer: 'adam',
        initial_kl: initialKl,
        final_kl: finalKl,
      },
    },
    sets.map(([current]) => ({ weight: current.W.data, bias: current.b.data })),
    options.outDir,
  );
  trained.save(options.outDir);
  return { lens: trained, outDir: options.outDir, steps, tokens, initialKl, finalKl, cancelled: false };
}

/** Learning-rate multiplier: linear warm-up over the first 5% of steps, then linear decay to zero. */
function schedule(step: number, steps: number): number {
  const warmup = Math.max(1, Math.round(steps * WARMUP_FRACTION));
  if (step <= warmup) return step / warmup;
  return Math.max(0, (steps - step + 1) / (steps - warmup + 1));
}

interface ResidualBatch {
  /** Per layer 0..L-1: the stream entering the block, [batchTokens × d]. */
  readonly layers: readonly Float32Array[];
  /** The stream after the last block, [batchTokens × d]. */
  readonly final: Float32Array;
}

/** Batches of exactly `batchTokens` non-BOS positions from consecutive corpus windows, cycling through the corpus. */
async function* residualBatches(
  model: HookedModel,
  corpus: string,
  batchTokens: number,
  contextSize: number | undefined,
  signal: AbortSignal | undefined,
): AsyncGenerator<ResidualBatch> {
  const spec = model.spec;
  const { nLayers: L, dModel: d } = spec;
  const hooks = Array.from({ length: L + 1 }, (_, l) => residualHook(spec, l));
  const ctx = Math.min(contextSize ?? spec.nCtx, spec.nCtx);
  const bos = model.bosTokenId;
  const buffers = hooks.map(() => new Float32Array(batchTokens * d));
  let filled = 0;
  let pending: number[][] = [];
  let pendingTokens = 0;
  const take = async function* (): AsyncGenerator<ResidualBatch> {
    const padded = await model.runHooksPadded(pending, hooks);
    const T = Math.max(...padded.lengths);
    for (let b = 0; b < pending.length; b++) {
      const first = bos !== null && pending[b][0] === bos ? 1 : 0;
      for (let t = first; t < pending[b].length; t++) {
        const src = (b * T + t) * d;
        hooks.forEach((hook, i) =>
          buffers[i].set(padded.hooks.get(hook)!.data.subarray(src, src + d), filled * d),
        );
        filled++;
        if (filled === batchTokens) {
          yield { layers: buffers.slice(0, L).map((x) => x.slice()), final: buffers[L].slice() };
          filled = 0;
        }
      }
    }
    pending = [];
    pendingTokens = 0;
  };
  for (;;) {
    let any = false;
    for await (const doc of readCorpus(corpus)) {
      if (signal?.aborted) throw new CancelledError();
      const ids = (await model.tokenize(doc.text, { prependBos: false })).map((t) => t.id);
      for (const window of contextWindows(ids, bos, ctx)) {
        if (window.length < 2) continue;
        any = true;
        pending.push(window);
        pendingTokens += window.length;
        if (pendingTokens >= batchTokens) yield* take();
      }
    }
    if (pending.length > 0) yield* take();
    if (!any) return;
  }
}
