/**
 * How good an SAE is, on held-out text: L0, fraction of variance unexplained,
 * next-token loss with the reconstruction spliced in at its hook against the
 * clean model and against the hook zero-ablated (loss recovered =
 * (CE_zero − CE_spliced) / (CE_zero − CE_clean)), and the fractions of dead
 * (never active) and dense (active on more than 10% of tokens) features.
 * Windows are built as in training (BOS + up to contextSize − 1 tokens); the
 * BOS position is left out of every statistic.
 */
import { readCorpus } from '../corpus';
import { logSumExp } from '../logits';
import { CancelledError, LoupeError } from '../errors';
import { HookedModel } from '../model';
import { Tensor } from '../tensor';
import { contextWindows } from './activations';
import { Sae } from './sae';
import { attachSae } from './splice';

/** Logits per run (f32 elements, 256 MiB): bounds the windows evaluated together. */
const MAX_LOGIT_ELEMENTS = 1 << 26;

export interface EvaluateOptions {
  readonly corpus: string;
  readonly contextSize?: number;
  /** Stop after this many tokens (non-BOS positions). */
  readonly maxTokens?: number;
  readonly windowsPerRun?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (tokens: number) => void;
}

export interface SaeEvaluation {
  readonly tokens: number;
  readonly l0: number;
  readonly mse: number;
  /** Null where the activations do not vary (there is no variance to explain). */
  readonly fvu: number | null;
  readonly ceClean: number;
  readonly ceSpliced: number;
  readonly ceZeroAblated: number;
  /** Null where zero-ablating the SAE does not change the loss (there is no gap to recover). */
  readonly lossRecovered: number | null;
  readonly deadFraction: number;
  readonly denseFraction: number;
}

export async function evaluateSae(
  model: HookedModel,
  sae: Sae,
  options: EvaluateOptions,
): Promise<SaeEvaluation> {
  const att = attachSae(model, sae);
  const hook = att.hook.name;
  const { dIn, dSae } = sae.config;
  const ctx = Math.min(options.contextSize ?? sae.config.contextSize ?? 128, model.spec.nCtx);
  const maxTokens = options.maxTokens ?? 100_000;
  // Three runs' [windows, ctx, d_vocab] logits are held at once: a 256k vocabulary takes fewer windows per run.
  const perRun =
    options.windowsPerRun ??
    Math.max(1, Math.min(8, Math.floor(MAX_LOGIT_ELEMENTS / (ctx * model.spec.dVocab))));
  const bos = model.tokenizer?.bosTokenId ?? null;
  const fires = new Float64Array(dSae);
  let tokens = 0;
  let l0Sum = 0;
  let sqErr = 0;
  const sum = new Float64Array(dIn);
  const sumSq = new Float64Array(dIn);
  const ce = { clean: 0, spliced: 0, zero: 0, count: 0 };

  const runBatch = async (windows: number[][]): Promise<void> => {
    const clean = await model.runPadded(windows, { hooks: [hook] });
    const x = clean.hooks.get(hook)!;
    const T = x.dims[1];
    const rows = x.data.length / dIn;
    const fwd = await sae.forward({ dims: [rows, dIn], data: x.data }, { center: att.center });
    // Replace every position but BOS (which the SAE never saw in training).
    const keepBos: Tensor = {
      dims: [windows.length, T, ...x.dims.slice(2).map(() => 1)],
      data: Float32Array.from({ length: windows.length * T }, (_, i) => (i % T === 0 ? 1 : 0)),
    };
    const reconData = Float32Array.from(fwd.saeOut.data);
    for (let b = 0; b < windows.length; b++) reconData.fill(0, b * T * dIn, (b * T + 1) * dIn);
    const recon: Tensor = { dims: x.dims, data: reconData };
    const spliced = await model.runPadded(windows, { edits: [{ hook, mul: keepBos, add: recon }] });
    const zero = await model.runPadded(windows, { edits: [{ hook, mul: keepBos }] });
    const V = model.spec.dVocab;
    windows.forEach((w, b) => {
      for (let t = 1; t < w.length; t++) {
        const r = b * T + t;
        for (let j = 0; j < dIn; j++) {
          const v = x.data[r * dIn + j];
          const e = v - fwd.saeOut.data[r * dIn + j];
          sqErr += e * e;
          sum[j] += v;
          sumSq[j] += v * v;
        }
        for (let i = 0; i < dSae; i++) {
          if (fwd.featureActs.data[r * dSae + i] > 0) {
            fires[i]++;
            l0Sum++;
          }
        }
        tokens++;
        if (t + 1 < w.length) {
          const next = w[t + 1];
          ce.clean += nll(clean.logits.data, r * V, V, next);
          ce.spliced += nll(spliced.logits.data, r * V, V, next);
          ce.zero += nll(zero.logits.data, r * V, V, next);
          ce.count++;
        }
      }
    });
    options.onProgress?.(tokens);
  };

  let pending: number[][] = [];
  outer: for await (const doc of readCorpus(options.corpus)) {
    if (options.signal?.aborted) throw new CancelledError();
    const ids = (await model.tokenize(doc.text, { prependBos: false })).map((t) => t.id);
    for (const window of contextWindows(ids, bos, ctx)) {
      pending.push(window);
      if (pending.length === perRun) {
        await runBatch(pending);
        pending = [];
        if (tokens >= maxTokens) break outer;
      }
    }
  }
  if (pending.length > 0) await runBatch(pending);
  if (ce.count === 0) {
    throw new LoupeError(
      `${options.corpus}: no text found with two tokens or more; the loss needs a next token to predict`,
    );
  }

  let variance = 0;
  for (let j = 0; j < dIn; j++) variance += sumSq[j] / tokens - (sum[j] / tokens) ** 2;
  const ceClean = ce.clean / ce.count;
  const ceSpliced = ce.spliced / ce.count;
  const ceZero = ce.zero / ce.count;
  let dead = 0;
  let dense = 0;
  for (const f of fires) {
    if (f === 0) dead++;
    if (f / tokens > 0.1) dense++;
  }
  return {
    tokens,
    l0: l0Sum / tokens,
    mse: sqErr / tokens,
    fvu: variance > 0 ? sqErr / tokens / variance : null,
    ceClean,
    ceSpliced,
    ceZeroAblated: ceZero,
    lossRecovered: ceZero !== ceClean ? (ceZero - ceSpliced) / (ceZero - ceClean) : null,
    deadFraction: dead / dSae,
    denseFraction: dense / dSae,
  };
}

/** −log softmax(logits)[target] for the row of V logits at offset. */
export function nll(logits: Float32Array, offset: number, V: number, target: number): number {
  return logSumExp(logits.subarray(offset, offset + V)) - logits[offset + target];
}
