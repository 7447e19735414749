/**
 * Concept activation vectors (Kim et al. 2018, "Interpretability Beyond
 * Feature Attribution: TCAV"): a linear classifier separates a layer's
 * activations on examples of a concept from those on random examples; the
 * CAV is the unit normal of its boundary, pointing toward the concept. Each
 * example (a text) gives one activation, as in the paper: here the mean over
 * its tokens (BOS left out). The classifier is the probes' L2-regularised
 * logistic regression.
 */
import { CancelledError, LoupeError } from '../errors';
import { HookedModel } from '../model';
import { hookWidth } from '../sae/activations';
import { fitLogistic } from '../probes/logistic';
import { unitDirection } from './steering';

/** Per hook, one row per example: the mean activation over its tokens. */
export interface ExampleActivations {
  readonly count: number;
  readonly rows: ReadonlyMap<string, Float32Array>;
  /** Per hook, the mean norm of a single token's activation (the scale of a finite-difference step). */
  readonly tokenNorm: ReadonlyMap<string, number>;
}

export async function exampleActivations(
  model: HookedModel,
  examples: readonly (readonly number[])[],
  hooks: readonly string[],
  signal?: AbortSignal,
): Promise<ExampleActivations> {
  const widths = hooks.map((h) => hookWidth(model, h));
  const bos = model.bosTokenId;
  const rows = new Map(hooks.map((h, k) => [h, new Float32Array(examples.length * widths[k])]));
  const norms = new Map(hooks.map((h) => [h, 0]));
  let tokens = 0;
  for (let e0 = 0; e0 < examples.length; e0 += 8) {
    if (signal?.aborted) throw new CancelledError();
    const batch = examples.slice(e0, e0 + 8);
    const padded = await model.runHooksPadded(batch, hooks);
    hooks.forEach((hook, k) => {
      const t = padded.hooks.get(hook)!;
      const w = widths[k];
      const T = t.dims[1];
      const out = rows.get(hook)!;
      let normSum = 0;
      batch.forEach((ids, b) => {
        const first = ids[0] === bos && ids.length > 1 ? 1 : 0;
        const row = out.subarray((e0 + b) * w, (e0 + b + 1) * w);
        for (let p = first; p < ids.length; p++) {
          const src = t.data.subarray((b * T + p) * w, (b * T + p + 1) * w);
          let sq = 0;
          for (let j = 0; j < w; j++) {
            row[j] += src[j];
            sq += src[j] * src[j];
          }
          normSum += Math.sqrt(sq);
        }
        for (let j = 0; j < w; j++) row[j] /= ids.length - first;
      });
      norms.set(hook, norms.get(hook)! + normSum);
    });
    batch.forEach((ids) => (tokens += ids[0] === bos && ids.length > 1 ? ids.length - 1 : ids.length));
  }
  return { count: examples.length, rows, tokenNorm: new Map([...norms].map(([h, s]) => [h, s / tokens])) };
}

export interface Cav {
  /** Unit vector in the hook's activation space, pointing toward the concept. */
  readonly direction: Float32Array;
  /** Training accuracy of the concept-vs-random classifier. */
  readonly accuracy: number;
}

/** The CAV separating `concept` rows from `random` rows (each [n, d]). */
export async function trainCav(
  concept: Float32Array,
  random: Float32Array,
  d: number,
  options: { readonly l2?: number; readonly threads?: number } = {},
): Promise<Cav> {
  const nC = concept.length / d;
  const nR = random.length / d;
  if (nC < 1 || nR < 1) throw new LoupeError('a CAV needs at least one concept and one random example');
  const x = new Float32Array((nC + nR) * d);
  x.set(random, 0);
  x.set(concept, nR * d);
  const y = Int32Array.from({ length: nC + nR }, (_, i) => (i < nR ? 0 : 1));
  const fit = await fitLogistic(x, nC + nR, d, [y], {
    classes: 2,
    l2: options.l2 ?? 1e-2,
    threads: options.threads,
  });
  return { direction: unitDirection(fit.classifiers[0].weight), accuracy: fit.trainAccuracy[0] };
}
