/**
 * TCAV (Kim et al. 2018): how much a concept matters to one prediction.
 * For each input text, the directional derivative of the target token's
 * logit (at the input's last position) along the concept's CAV at a hook:
 *   S = ∂ logit / ∂ε  of  logit(h + ε·v),
 * taken by central differences, (f(h + ε·v) − f(h − ε·v)) / 2ε, through an
 * edit that adds ±ε·v to the hook at every position: no autograd needed.
 * The TCAV score is the fraction of inputs with S > 0.
 *
 * Significance: as in Kim et al.'s code, R random sets S_i are drawn; the
 * concept's CAVs are concept-vs-S_i, the random CAVs S_j-vs-S_i (i ≠ j). The
 * paper's test compares the two groups of scores with a two-sample t-test,
 * but the concept's R scores share one concept set, so their spread leaves
 * out how much a score depends on which examples make the set: a random set
 * used as the concept comes out "significant" far more often than α (about
 * a third of the time at R = 10 in our tests). Loupe therefore decides on the
 * same scores taken per set: the concept's mean score against each random
 * set's mean score (S_j against the others), by Student's t for one new
 * observation (two-sided, R − 1 degrees of freedom): the question "does this
 * concept behave like a random set?" at the nominal α. The paper's
 * two-sample test is reported beside it (`pairwise`).
 */
import { CancelledError, LoupeError } from '../errors';
import { HookedModel } from '../model';
import { seededUniform } from '../random';
import { hookWidth } from '../sae/activations';
import { exampleActivations, trainCav } from './cav';
import { FINAL_NORMALIZED, checkTokenId, logitReadout, readLogit } from './predictions';
import { TTest, tTestIndependent, tTestNewObservation } from './statistics';

export interface TcavSets {
  /** Token sequences showing the concept. */
  readonly concept: readonly (readonly number[])[];
  /** A pool of random sequences the random sets are drawn from. */
  readonly random: readonly (readonly number[])[];
  /** The inputs whose prediction is explained. */
  readonly inputs: readonly (readonly number[])[];
}

export interface TcavOptions {
  readonly hooks: readonly string[];
  /** Token whose logit is differentiated, at each input's last position. */
  readonly target: number;
  /** Random sets R: R concept CAVs, R(R − 1) random ones; default 10. */
  readonly runs?: number;
  /** The finite-difference step as a fraction of a token activation's mean norm at the hook; default 0.01. */
  readonly stepScale?: number;
  readonly l2?: number;
  /** Significance level; default 0.05. */
  readonly alpha?: number;
  readonly seed?: number;
  /** Inputs per forward pass (two batch items each); default 16. */
  readonly inputsPerRun?: number;
  readonly threads?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface TcavHookResult {
  readonly hook: string;
  /** TCAV score of each concept CAV (concept vs random set i). */
  readonly scores: number[];
  /** Each random set's mean TCAV score as a concept against the other random sets. */
  readonly randomScores: number[];
  readonly meanScore: number;
  readonly meanRandomScore: number;
  /** The concept's mean score against the random sets' (Student t for a new observation). */
  readonly t: number;
  readonly df: number;
  readonly pValue: number;
  readonly significant: boolean;
  /** Kim et al.'s two-sample t-test of the concept scores against every random-pair score. */
  readonly pairwise: TTest;
  /** Mean training accuracy of the concept CAVs (near 0.5: the layer does not separate the concept). */
  readonly cavAccuracy: number;
  readonly randomCavAccuracy: number;
  /** The step ε used. */
  readonly epsilon: number;
  /** One concept CAV (against the first random set), for export. */
  readonly cav: Float32Array;
}

export interface TcavResult {
  readonly target: number;
  readonly runs: number;
  readonly alpha: number;
  readonly counts: { readonly concept: number; readonly random: number; readonly inputs: number };
  readonly hooks: TcavHookResult[];
}

export async function runTcav(model: HookedModel, sets: TcavSets, options: TcavOptions): Promise<TcavResult> {
  const runs = options.runs ?? 10;
  const alpha = options.alpha ?? 0.05;
  const stepScale = options.stepScale ?? 0.01;
  checkTokenId(options.target, model.spec.dVocab, 'the target');
  if (!Number.isInteger(runs) || runs < 2)
    throw new LoupeError(`TCAV needs at least 2 random runs for its t-test, not ${runs}`);
  if (sets.concept.length < 2) throw new LoupeError('give at least 2 concept examples');
  if (sets.inputs.length === 0)
    throw new LoupeError('give at least one input whose prediction TCAV explains');
  if (sets.random.length < sets.concept.length) {
    throw new LoupeError(
      `the random pool has ${sets.random.length} examples but each random set needs as many as the concept's ${sets.concept.length}; give more random text`,
    );
  }
  for (const [what, list] of Object.entries(sets)) {
    if ((list as readonly (readonly number[])[]).some((s) => s.length === 0))
      throw new LoupeError(`a ${what} example has no tokens`);
  }
  if (options.hooks.length === 0) throw new LoupeError('name at least one hook for TCAV');
  for (const h of options.hooks) {
    hookWidth(model, h);
    if (model.hookByName(h).dims.length !== 3)
      throw new LoupeError(`TCAV perturbs a [batch, pos, d] hook; ${h} is not one`);
  }
  const m = sets.concept.length;
  const rand = seededUniform(options.seed ?? 0);
  // R random sets of m examples each (without replacement within a set).
  const randomSets = Array.from({ length: runs }, () => {
    const idx = Array.from({ length: sets.random.length }, (_, i) => i);
    for (let i = 0; i < m; i++) {
      const j = i + Math.floor(rand() * (idx.length - i));
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    return idx.slice(0, m);
  });

  const conceptActs = await exampleActivations(model, sets.concept, options.hooks, options.signal);
  const randomActs = await exampleActivations(model, sets.random, options.hooks, options.signal);
  const total = options.hooks.length * runs * runs;
  let done = 0;
  const mean = (v: readonly number[]): number => v.reduce((a, x) => a + x, 0) / v.length;
  const results: TcavHookResult[] = [];
  for (const hook of options.hooks) {
    const d = hookWidth(model, hook);
    const epsilon = stepScale * randomActs.tokenNorm.get(hook)!;
    const all = randomActs.rows.get(hook)!;
    const rows = randomSets.map((set) => {
      const out = new Float32Array(set.length * d);
      set.forEach((e, i) => out.set(all.subarray(e * d, (e + 1) * d), i * d));
      return out;
    });
    const score = async (
      positive: Float32Array,
      negative: Float32Array,
    ): Promise<{ score: number; accuracy: number; cav: Float32Array }> => {
      const cav = await trainCav(positive, negative, d, { l2: options.l2, threads: options.threads });
      const s = await tcavScore(model, sets.inputs, hook, cav.direction, epsilon, options);
      options.onProgress?.(++done, total);
      return { score: s, accuracy: cav.accuracy, cav: cav.direction };
    };
    const concept = [];
    for (let i = 0; i < runs; i++) concept.push(await score(conceptActs.rows.get(hook)!, rows[i]));
    const pairScores: number[] = [];
    const randomScores: number[] = [];
    let randomAccuracy = 0;
    for (let j = 0; j < runs; j++) {
      const mine: number[] = [];
      for (let i = 0; i < runs; i++) {
        if (i === j) continue;
        const r = await score(rows[j], rows[i]);
        mine.push(r.score);
        randomAccuracy += r.accuracy / (runs * (runs - 1));
      }
      pairScores.push(...mine);
      randomScores.push(mean(mine));
    }
    const scores = concept.map((c) => c.score);
    const test = tTestNewObservation(mean(scores), randomScores);
    results.push({
      hook,
      scores,
      randomScores,
      meanScore: mean(scores),
      meanRandomScore: mean(randomScores),
      t: test.t,
      df: test.df,
      pValue: test.p,
      significant: test.p < alpha,
      pairwise: tTestIndependent(scores, pairScores),
      cavAccuracy: mean(concept.map((c) => c.accuracy)),
      randomCavAccuracy: randomAccuracy,
      epsilon,
      cav: concept[0].cav,
    });
  }
  return {
    target: options.target,
    runs,
    alpha,
    counts: { concept: sets.concept.length, random: sets.random.length, inputs: sets.inputs.length },
    hooks: results,
  };
}

/**
 * The directional derivatives of the target logit along `direction` at `hook`,
 * one per input, by central differences with step ε.
 */
export async function directionalDerivatives(
  model: HookedModel,
  inputs: readonly (readonly number[])[],
  hook: string,
  direction: Float32Array,
  epsilon: number,
  target: number,
  options: { readonly inputsPerRun?: number; readonly signal?: AbortSignal } = {},
): Promise<number[]> {
  const d = direction.length;
  const perRun = options.inputsPerRun ?? 16;
  const readout = logitReadout(model, target, null);
  const out: number[] = [];
  for (let i0 = 0; i0 < inputs.length; i0 += perRun) {
    if (options.signal?.aborted) throw new CancelledError();
    const chunk = inputs.slice(i0, i0 + perRun);
    // Items 2i and 2i + 1: input i shifted by +ε·v and −ε·v at every position.
    const batch = chunk.flatMap((ids) => [ids, ids]);
    const add = new Float32Array(batch.length * d);
    for (let b = 0; b < batch.length; b++) {
      const sign = b % 2 === 0 ? epsilon : -epsilon;
      for (let j = 0; j < d; j++) add[b * d + j] = sign * direction[j];
    }
    const padded = await model.runEditedHooksPadded(
      batch,
      [FINAL_NORMALIZED],
      [{ hook, add: { dims: [batch.length, 1, d], data: add } }],
    );
    const normalized = padded.hooks.get(FINAL_NORMALIZED)!;
    chunk.forEach((ids, i) => {
      const p = ids.length - 1;
      const plus = readLogit(normalized, 2 * i, p, readout);
      const minus = readLogit(normalized, 2 * i + 1, p, readout);
      out.push((plus - minus) / (2 * epsilon));
    });
  }
  return out;
}

async function tcavScore(
  model: HookedModel,
  inputs: readonly (readonly number[])[],
  hook: string,
  direction: Float32Array,
  epsilon: number,
  options: TcavOptions,
): Promise<number> {
  const derivatives = await directionalDerivatives(
    model,
    inputs,
    hook,
    direction,
    epsilon,
    options.target,
    options,
  );
  return derivatives.filter((s) => s > 0).length / derivatives.length;
}
