/**
 * Reading what a run predicts: a position's logits, log-probabilities and
 * top tokens, the logit difference between two tokens ("why A and not B"),
 * and the mean next-token loss of a text. Every causal tool reports its
 * effects through these, so they all mean the same thing by "prediction".
 */
import { LoupeError } from '../errors';
import { hasEngineWeight, readEngineWeight, unembeddingRows } from '../lens/engineWeights';
import { logSumExp } from '../logits';
import { HookedModel } from '../model';
import { Tensor } from '../tensor';

export interface TokenLogit {
  readonly id: number;
  readonly logit: number;
  readonly prob: number;
}

/** Logits of batch item b at position t, from [B, T, V]. */
export function logitRow(logits: Tensor, b: number, t: number): Float32Array {
  const [, T, V] = logits.dims;
  return logits.data.subarray((b * T + t) * V, (b * T + t + 1) * V);
}

/** The k most likely tokens of a row of logits, most likely first (ties: lower id first). */
export function topTokens(row: Float32Array, k: number): TokenLogit[] {
  const lse = logSumExp(row);
  const best: number[] = [];
  for (let id = 0; id < row.length; id++) {
    if (best.length < k || row[id] > row[best[best.length - 1]]) {
      let i = best.length;
      while (i > 0 && row[best[i - 1]] < row[id]) i--;
      best.splice(i, 0, id);
      if (best.length > k) best.pop();
    }
  }
  return best.map((id) => ({ id, logit: row[id], prob: Math.exp(row[id] - lse) }));
}

/** The greedy choice: the highest logit, the lowest id on a tie. */
export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Log-probability of one token under a row of logits. */
export function logProb(row: Float32Array, id: number): number {
  return row[id] - logSumExp(row);
}

/** Mean next-token cross-entropy of item b over positions 0..n−2 (NaN for one token). */
export function meanNextTokenLoss(logits: Tensor, b: number, ids: readonly number[]): number {
  let sum = 0;
  for (let t = 0; t + 1 < ids.length; t++) sum -= logProb(logitRow(logits, b, t), ids[t + 1]);
  return ids.length > 1 ? sum / (ids.length - 1) : NaN;
}

/** Checks a token id against the vocabulary, for a message that names the flag. */
export function checkTokenId(id: number, dVocab: number, what: string): void {
  if (!Number.isInteger(id) || id < 0 || id >= dVocab) {
    throw new LoupeError(`${what} token ${id} is outside the vocabulary (0..${dVocab - 1})`);
  }
}

/** A position in a sequence of n tokens; negative counts from the end (−1: the last). */
export function resolvePosition(position: number | undefined, n: number, what = 'position'): number {
  const p = position === undefined ? n - 1 : position < 0 ? n + position : position;
  if (!Number.isInteger(p) || p < 0 || p >= n) {
    throw new LoupeError(`${what} ${position} is outside the text's ${n} tokens`);
  }
  return p;
}

/** The hook a logit difference is read from without computing the whole vocabulary's logits. */
export const FINAL_NORMALIZED = 'ln_final.hook_normalized';

/** One token's logit as a linear readout of ln_final.hook_normalized: n · direction + offset. */
interface LinearLogit {
  readonly direction: Float32Array;
  readonly offset: number;
}

/** What `readLogit` needs: each token's linear logit and the model's final soft-cap (null: none). */
export interface LogitReadout {
  readonly target: LinearLogit;
  readonly versus: LinearLogit | null;
  readonly cap: number | null;
}

/**
 * logit(target) − logit(versus) (or logit(target) alone, when versus is null)
 * read from ln_final.hook_normalized. Each logit is the unembedding row times
 * the final norm's weight for RMSNorm models (whose hook_normalized comes
 * before it), plus the unembedding bias; a model that soft-caps its logits
 * (Gemma 2) has each one capped before the difference, as its logits are.
 * Reading a logit this way skips the [tokens × vocabulary] product and its
 * output, which for a patching grid on a large vocabulary is a third of the work.
 */
export function logitReadout(model: HookedModel, target: number, versus: number | null): LogitReadout {
  const d = model.spec.dModel;
  const ids = versus === null ? [target] : [target, versus];
  const rows = unembeddingRows(model, ids);
  const w = model.spec.norm === 'rmsnorm' ? readEngineWeight(model, 'ln_final.w') : null;
  const b = hasEngineWeight(model, 'b_U') ? readEngineWeight(model, 'b_U') : null;
  const linear = (i: number): LinearLogit => {
    const direction = rows.slice(i * d, (i + 1) * d);
    if (w) for (let j = 0; j < d; j++) direction[j] *= w[j];
    return { direction, offset: b ? b[ids[i]] : 0 };
  };
  return { target: linear(0), versus: versus === null ? null : linear(1), cap: model.spec.finalSoftcap };
}

/** Applies a readout to item b, position p of ln_final.hook_normalized [B, T, d]. */
export function readLogit(normalized: Tensor, b: number, p: number, readout: LogitReadout): number {
  const [, T, d] = normalized.dims;
  const at = (b * T + p) * d;
  const logit = (l: LinearLogit): number => {
    let v = l.offset;
    for (let j = 0; j < d; j++) v += normalized.data[at + j] * l.direction[j];
    return readout.cap === null ? v : readout.cap * Math.tanh(v / readout.cap);
  };
  return logit(readout.target) - (readout.versus ? logit(readout.versus) : 0);
}
