/**
 * Steering: generate a continuation with strength · direction added to one
 * hook at every position (prompt and generated tokens alike), side by side
 * with the unsteered continuation from the same prompt. Both run in one batch
 * per step, so they see identical numerics apart from the edit. Greedy
 * decoding takes the top token (lowest id on a tie); sampling draws from
 * softmax(logits / temperature), optionally cut to the top k, with one seeded
 * generator per side started from the same seed, so where the two
 * distributions agree the two sides draw alike.
 *
 * Directions: an SAE feature's decoder row (strength is then in units of the
 * feature's activation, as SAELens and Neuronpedia steer), or a probe's
 * direction scaled to unit length (strength in units of activation norm).
 */
import { CancelledError, LoupeError } from '../errors';
import { hookWidth } from '../sae/activations';
import { HookedModel } from '../model';
import { seededUniform } from '../random';
import { Sae } from '../sae/sae';
import { argmax, logitRow } from './predictions';

export interface SteerOptions {
  readonly hook: string;
  /** [width of the hook]. */
  readonly direction: Float32Array;
  readonly strength: number;
  /** Tokens to generate. */
  readonly tokens: number;
  readonly sample?: boolean;
  readonly temperature?: number;
  /** Sample only among the k most likely tokens. */
  readonly topK?: number;
  readonly seed?: number;
  readonly signal?: AbortSignal;
  /** Called after each generated pair. */
  readonly onToken?: (step: number, unsteered: number, steered: number) => void;
}

export interface Continuation {
  /** Generated token ids (after the prompt). */
  readonly ids: number[];
  readonly text: string | null;
}

export interface SteerResult {
  readonly hook: string;
  readonly strength: number;
  readonly sampled: boolean;
  readonly seed: number | null;
  readonly prompt: readonly number[];
  readonly unsteered: Continuation;
  readonly steered: Continuation;
}

export async function steer(
  model: HookedModel,
  prompt: readonly number[],
  options: SteerOptions,
): Promise<SteerResult> {
  const width = hookWidth(model, options.hook);
  const hook = model.hookByName(options.hook);
  if (hook.dims.length !== 3) {
    throw new LoupeError(`steering adds a vector to a [batch, pos, d] hook; ${options.hook} has more axes`);
  }
  if (options.direction.length !== width) {
    throw new LoupeError(
      `the direction has ${options.direction.length} values but ${options.hook} has width ${width}; it was made for another hook or model`,
    );
  }
  checkFiniteDirection(options.direction, 'the direction');
  if (!Number.isFinite(options.strength))
    throw new LoupeError(`the strength must be a number, not ${options.strength}`);
  if (!Number.isInteger(options.tokens) || options.tokens < 1) {
    throw new LoupeError(
      `the number of tokens to generate must be a positive integer, not ${options.tokens}`,
    );
  }
  if (prompt.length === 0) throw new LoupeError('the prompt has no tokens');
  if (prompt.length + options.tokens > model.spec.nCtx) {
    throw new LoupeError(
      `${prompt.length} prompt tokens + ${options.tokens} to generate exceed the model's context of ${model.spec.nCtx}`,
    );
  }
  const temperature = options.temperature ?? 1;
  if (options.sample && !(temperature > 0))
    throw new LoupeError(`the temperature must be positive, not ${temperature}`);
  const add = new Float32Array(2 * width);
  for (let j = 0; j < width; j++) add[width + j] = options.strength * options.direction[j];
  const edits = [{ hook: options.hook, add: { dims: [2, 1, width], data: add } }];
  const seed = options.seed ?? 0;
  const draws = [seededUniform(seed), seededUniform(seed)];
  const seqs = [[...prompt], [...prompt]];
  for (let step = 0; step < options.tokens; step++) {
    if (options.signal?.aborted) throw new CancelledError();
    const T = seqs[0].length;
    const out = await model.runAt(seqs, [T - 1, T - 1], { edits });
    const next = [0, 1].map((b) => {
      const row = logitRow(out.logits, b, 0);
      return options.sample ? sampleToken(row, temperature, options.topK, draws[b]) : argmax(row);
    });
    seqs[0].push(next[0]);
    seqs[1].push(next[1]);
    options.onToken?.(step, next[0], next[1]);
  }
  const continuation = async (ids: number[]): Promise<Continuation> => ({
    ids,
    text: model.tokenizer ? await model.tokenizer.decode(ids) : null,
  });
  return {
    hook: options.hook,
    strength: options.strength,
    sampled: Boolean(options.sample),
    seed: options.sample ? seed : null,
    prompt,
    unsteered: await continuation(seqs[0].slice(prompt.length)),
    steered: await continuation(seqs[1].slice(prompt.length)),
  };
}

/** One draw from softmax(row / temperature), among the top k when given. */
export function sampleToken(
  row: Float32Array,
  temperature: number,
  topK: number | undefined,
  uniform: () => number,
): number {
  let ids = Array.from(row.keys());
  if (topK !== undefined && topK < row.length) {
    ids = ids.sort((a, b) => row[b] - row[a] || a - b).slice(0, Math.max(1, topK));
  }
  let max = -Infinity;
  for (const id of ids) max = Math.max(max, row[id] / temperature);
  const weights = ids.map((id) => Math.exp(row[id] / temperature - max));
  const total = weights.reduce((a, w) => a + w, 0);
  let u = uniform() * total;
  for (let i = 0; i < ids.length; i++) {
    u -= weights[i];
    if (u < 0) return ids[i];
  }
  return ids[ids.length - 1];
}

/**
 * An SAE feature's decoder row in the model's activation space (divided by
 * the SAE's input scaling factor where it has one).
 */
export function featureDirection(sae: Sae, index: number): Float32Array {
  const { dSae, dIn } = sae.config;
  if (!Number.isInteger(index) || index < 0 || index >= dSae) {
    throw new LoupeError(`${sae.label}: feature ${index} does not exist (d_sae = ${dSae})`);
  }
  const wDec = sae.params.get('W_dec')!.data;
  const scale = sae.normScalingFactor ?? 1;
  return Float32Array.from(wDec.subarray(index * dIn, (index + 1) * dIn), (v) => v / scale);
}

/** Refuses a direction with a NaN or infinite value: every steered activation would be one. */
export function checkFiniteDirection(v: Float32Array, where: string): void {
  const i = v.findIndex((x) => !Number.isFinite(x));
  if (i >= 0) {
    throw new LoupeError(
      `${where} has a value that is not a finite number at index ${i}; it cannot steer. Make the direction again`,
    );
  }
}

/** The direction scaled to unit length. */
export function unitDirection(v: Float32Array): Float32Array {
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm);
  if (!(norm > 0)) throw new LoupeError('the direction is zero; there is nothing to steer along');
  return Float32Array.from(v, (x) => x / norm);
}
