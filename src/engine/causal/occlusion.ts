/**
 * Occlusion attribution: each input token's effect on one prediction,
 * measured by taking the token away and seeing how much the prediction
 * drops. "Away" is either a zeroed token embedding at that position (the
 * position embedding stays, so the sequence keeps its length and layout) or a
 * replacement token. Effect = metric(clean) − metric(occluded): positive
 * where the token supports the prediction. Tokens after the watched position
 * cannot affect it (causal attention) and get 0 without running; so does
 * BOS, which is not part of the text.
 */
import { CancelledError, LoupeError } from '../errors';
import { hookShape } from '../hooks';
import { HookedModel } from '../model';
import { argmax, checkTokenId, logProb, logitRow, resolvePosition } from './predictions';

export interface OcclusionOptions {
  /** Position whose prediction is explained; default the last. */
  readonly position?: number;
  /** Token whose prediction is explained; default the clean run's top prediction there. */
  readonly target?: number;
  /** With a versus token the metric is logit(target) − logit(versus). */
  readonly versus?: number;
  /** The metric without a versus token: the target's logit (default) or its log-probability. */
  readonly metric?: 'logit' | 'logprob';
  /** Replace each token by this one instead of zeroing its embedding. */
  readonly replacement?: number;
  readonly maxBatch?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface OcclusionResult {
  readonly position: number;
  readonly target: number;
  readonly versus: number | null;
  readonly metric: 'logit' | 'logprob' | 'logit-diff';
  readonly method: 'zero-embedding' | 'replacement';
  readonly clean: number;
  /** One per input token: metric(clean) − metric(with that token occluded). */
  readonly effects: number[];
}

export async function occlude(
  model: HookedModel,
  ids: readonly number[],
  options: OcclusionOptions = {},
): Promise<OcclusionResult> {
  if (ids.length === 0) throw new LoupeError('nothing to occlude: the text has no tokens');
  const position = resolvePosition(options.position, ids.length);
  const V = model.spec.dVocab;
  if (options.target !== undefined) checkTokenId(options.target, V, 'the target');
  if (options.versus !== undefined) checkTokenId(options.versus, V, 'the versus');
  if (options.replacement !== undefined) checkTokenId(options.replacement, V, 'the replacement');
  const bos = model.bosTokenId;
  const first = ids[0] === bos && ids.length > 1 ? 1 : 0;
  const occluded = Array.from({ length: position + 1 - first }, (_, i) => i + first);
  const metricName = options.versus !== undefined ? 'logit-diff' : (options.metric ?? 'logit');
  let target = options.target ?? -1;
  const measure = (row: Float32Array): number => {
    if (options.versus !== undefined) return row[target] - row[options.versus];
    return metricName === 'logprob' ? logProb(row, target) : row[target];
  };
  // Logits at the one position measured: a batch of occluded texts never makes [B, T, d_vocab].
  const cleanRow = logitRow((await model.runAt([ids], [position])).logits, 0, 0);
  if (target < 0) target = argmax(cleanRow);
  const clean = measure(cleanRow);
  const effects = new Array<number>(ids.length).fill(0);
  const maxBatch = options.maxBatch ?? 32;
  const embed = model.hookByName('hook_embed');
  for (let i0 = 0; i0 < occluded.length; i0 += maxBatch) {
    if (options.signal?.aborted) throw new CancelledError();
    const chunk = occluded.slice(i0, i0 + maxBatch);
    const B = chunk.length;
    let out;
    if (options.replacement !== undefined) {
      const r = options.replacement;
      out = await model.runAt(
        chunk.map((p) => ids.map((id, t) => (t === p ? r : id))),
        chunk.map(() => position),
      );
    } else {
      // Zero the token embedding at position p of item b: mul [B, T, 1].
      const shape = hookShape(model.spec, embed, B, ids.length);
      shape[2] = 1;
      const mul = new Float32Array(B * ids.length).fill(1);
      chunk.forEach((p, b) => (mul[b * ids.length + p] = 0));
      out = await model.runAt(
        chunk.map(() => ids),
        chunk.map(() => position),
        { edits: [{ hook: 'hook_embed', mul: { dims: shape, data: mul } }] },
      );
    }
    chunk.forEach((p, b) => (effects[p] = clean - measure(logitRow(out.logits, b, 0))));
    options.onProgress?.(Math.min(occluded.length, i0 + B), occluded.length);
  }
  return {
    position,
    target,
    versus: options.versus ?? null,
    metric: metricName,
    method: options.replacement !== undefined ? 'replacement' : 'zero-embedding',
    clean,
    effects,
  };
}
