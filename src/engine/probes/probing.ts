/**
 * Probing: for each hook, a logistic-regression probe trained on the
 * activations of the training documents and scored on the held-out ones,
 * beside two references that say what the accuracy means (Hewitt & Liang
 * 2019, "Designing and Interpreting Probes with Control Tasks"):
 *  - the majority baseline: always answer the training set's most common label;
 *  - the control task: each token type (the id at the example's position) gets
 *    a random label, drawn once from the training labels' distribution; a probe
 *    of the same capacity trained on it measures how much the probe can
 *    memorise word identity. Selectivity = accuracy − control accuracy.
 * A representation that merely encodes which token is there scores well on
 * both; a concept the layer has computed scores well on the task only.
 *
 * Activations for every example are read in one pass per group of hooks
 * (as many as fit a memory budget), straight into train and test matrices.
 */
import { CancelledError, LoupeError } from '../errors';
import { hookWidth } from '../sae/activations';
import { HookedModel } from '../model';
import { seededUniform } from '../random';
import { ProbeDataset, labelOrder, splitDocuments } from './dataset';
import { LinearClassifier, fitLogistic, predictClasses } from './logistic';

export interface ProbeOptions {
  /** Hooks to probe (per-token hooks: residual stream, attention and MLP outputs, hook_z, …). */
  readonly hooks: readonly string[];
  /** L2 penalty on the standardised weights; default 1e-3. */
  readonly l2?: number;
  /** Fraction of documents held out; default 0.2. */
  readonly testFraction?: number;
  readonly seed?: number;
  /** Train the control task too (default true). */
  readonly control?: boolean;
  readonly maxIterations?: number;
  /** Windows per forward pass; default 8. */
  readonly windowsPerRun?: number;
  /** Bytes of activations held at once; hooks beyond it are read in further passes. Default 768 MB. */
  readonly memoryBudget?: number;
  readonly threads?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: ProbeProgress) => void;
}

export interface ProbeProgress {
  readonly stage: 'activations' | 'training';
  readonly done: number;
  readonly total: number;
  /** The hook being trained (training stage). */
  readonly hook?: string;
}

export interface HookProbe {
  readonly hook: string;
  /** Block index, or -1 outside the blocks. */
  readonly layer: number;
  /** Held-out accuracy. */
  readonly accuracy: number;
  readonly trainAccuracy: number;
  /** Held-out accuracy of always answering the training set's most common label. */
  readonly majorityBaseline: number;
  /** Held-out accuracy of the same probe on the control task; null when it was not run. */
  readonly controlAccuracy: number | null;
  /** accuracy − controlAccuracy. */
  readonly selectivity: number | null;
  readonly trainLoss: number;
  readonly iterations: number;
  readonly converged: boolean;
  readonly classifier: LinearClassifier;
}

export interface ProbeResults {
  readonly dataset: string;
  /** Class order of the classifiers (for two classes, labels[1] is the one a binary probe scores). */
  readonly labels: string[];
  /** Examples per label, train and test together. */
  readonly counts: Record<string, number>;
  readonly split: {
    readonly trainDocuments: number;
    readonly testDocuments: number;
    readonly trainExamples: number;
    readonly testExamples: number;
  };
  readonly options: {
    readonly l2: number;
    readonly testFraction: number;
    readonly seed: number;
    readonly control: boolean;
  };
  readonly hooks: HookProbe[];
  readonly seconds: number;
}

export async function trainProbes(
  model: HookedModel,
  dataset: ProbeDataset,
  options: ProbeOptions,
): Promise<ProbeResults> {
  const started = Date.now();
  const l2 = options.l2 ?? 1e-3;
  const testFraction = options.testFraction ?? 0.2;
  const seed = options.seed ?? 0;
  const control = options.control ?? true;
  if (options.hooks.length === 0) throw new LoupeError('name at least one hook to probe');
  if (new Set(options.hooks).size !== options.hooks.length) throw new LoupeError('a hook is named twice');
  const widths = options.hooks.map((h) => probeWidth(model, h));
  const labels = labelOrder(dataset.examples.map((e) => e.label));
  const counts: Record<string, number> = {};
  for (const e of dataset.examples) counts[e.label] = (counts[e.label] ?? 0) + 1;
  if (labels.length < 2) {
    throw new LoupeError(
      `${dataset.description}: every example has the label '${labels[0]}'; a probe needs at least two classes`,
    );
  }
  const split = splitDocuments(dataset, testFraction, seed);
  const classOf = new Map(labels.map((l, i) => [l, i]));
  const isTest = dataset.examples.map((e) => split.test.has(dataset.sequences[e.sequence].document));
  const trainIdx: number[] = [];
  const testIdx: number[] = [];
  isTest.forEach((t, i) => (t ? testIdx : trainIdx).push(i));
  const yTrain = Int32Array.from(trainIdx, (i) => classOf.get(dataset.examples[i].label)!);
  const yTest = Int32Array.from(testIdx, (i) => classOf.get(dataset.examples[i].label)!);
  if (new Set(yTrain).size < 2) {
    throw new LoupeError(
      `${dataset.description}: the training documents hold only the label '${labels[yTrain[0]]}'; ` +
        'add documents with the other labels or change --seed',
    );
  }
  const K = labels.length;
  const trainCounts = new Array<number>(K).fill(0);
  for (const y of yTrain) trainCounts[y]++;
  const majority = trainCounts.indexOf(Math.max(...trainCounts));
  const majorityBaseline = accuracyOf(yTest, () => majority);

  // Control task: one label per token type, drawn from the training labels' distribution.
  const rand = seededUniform(seed ^ 0x5eed);
  const controlOf = new Map<number, number>();
  for (const type of [...new Set(dataset.examples.map((e) => e.tokenType))].sort((a, b) => a - b)) {
    let u = rand() * yTrain.length;
    let k = 0;
    while (k < K - 1 && u >= trainCounts[k]) u -= trainCounts[k++];
    controlOf.set(type, k);
  }
  const cTrain = Int32Array.from(trainIdx, (i) => controlOf.get(dataset.examples[i].tokenType)!);
  const cTest = Int32Array.from(testIdx, (i) => controlOf.get(dataset.examples[i].tokenType)!);

  // Hook groups that fit the memory budget, each read in one pass over the sequences.
  const budget = options.memoryBudget ?? 768 * 1024 * 1024;
  const n = dataset.examples.length;
  const groups: number[][] = [];
  let group: number[] = [];
  let bytes = 0;
  widths.forEach((w, h) => {
    const need = n * w * 4;
    if (group.length > 0 && bytes + need > budget) {
      groups.push(group);
      group = [];
      bytes = 0;
    }
    group.push(h);
    bytes += need;
  });
  groups.push(group);

  const totalSteps = dataset.sequences.length * groups.length;
  let stepsDone = 0;
  const results: HookProbe[] = [];
  for (const g of groups) {
    const hooks = g.map((h) => options.hooks[h]);
    const acts = await collect(
      model,
      dataset,
      hooks,
      g.map((h) => widths[h]),
      isTest,
      options,
      () => {
        stepsDone++;
        options.onProgress?.({ stage: 'activations', done: stepsDone, total: totalSteps });
      },
    );
    for (let k = 0; k < hooks.length; k++) {
      const hook = hooks[k];
      const d = widths[g[k]];
      options.onProgress?.({ stage: 'training', done: results.length, total: options.hooks.length, hook });
      const { train, test } = acts[k];
      acts[k] = { train: new Float32Array(0), test: new Float32Array(0) }; // let the group's memory go as it is used
      const fit = await fitLogistic(train, trainIdx.length, d, control ? [yTrain, cTrain] : [yTrain], {
        classes: K,
        l2,
        maxIterations: options.maxIterations,
        threads: options.threads,
        overwrite: true,
        signal: options.signal,
      });
      const [probe, controlProbe] = fit.classifiers;
      const testPred = predictClasses(probe, test, testIdx.length);
      const accuracy = accuracyOf(yTest, (i) => testPred[i]);
      let controlAccuracy: number | null = null;
      if (controlProbe) {
        const controlPred = predictClasses(controlProbe, test, testIdx.length);
        controlAccuracy = accuracyOf(cTest, (i) => controlPred[i]);
      }
      results.push({
        hook,
        layer: model.hookByName(hook).layer,
        accuracy,
        trainAccuracy: fit.trainAccuracy[0],
        majorityBaseline,
        controlAccuracy,
        selectivity: controlAccuracy === null ? null : accuracy - controlAccuracy,
        trainLoss: fit.trainLoss[0],
        iterations: fit.iterations,
        converged: fit.converged,
        classifier: probe,
      });
    }
  }
  options.onProgress?.({ stage: 'training', done: results.length, total: options.hooks.length });
  return {
    dataset: dataset.description,
    labels,
    counts,
    split: {
      trainDocuments: split.train.size,
      testDocuments: split.test.size,
      trainExamples: trainIdx.length,
      testExamples: testIdx.length,
    },
    options: { l2, testFraction, seed, control },
    hooks: results,
    seconds: (Date.now() - started) / 1000,
  };
}

/** A per-token hook's width (hook_z's heads flattened); unknown and attention-pattern hooks are refused. */
function probeWidth(model: HookedModel, hook: string): number {
  const h = model.hookByName(hook);
  if (h.dims[1] !== 'pos') {
    throw new LoupeError(
      `${hook} is not per token (its axes are ${h.dims.join(', ')}); probes read per-token hooks such as the residual stream`,
    );
  }
  return hookWidth(model, hook);
}

function accuracyOf(truth: Int32Array, predict: (i: number) => number): number {
  if (truth.length === 0) return NaN;
  let right = 0;
  for (let i = 0; i < truth.length; i++) if (predict(i) === truth[i]) right++;
  return right / truth.length;
}

/** Each hook's example rows (positions averaged), split into train and test matrices. */
async function collect(
  model: HookedModel,
  dataset: ProbeDataset,
  hooks: readonly string[],
  widths: readonly number[],
  isTest: readonly boolean[],
  options: ProbeOptions,
  onBatch: () => void,
): Promise<{ train: Float32Array; test: Float32Array }[]> {
  const nTest = isTest.filter((t) => t).length;
  const nTrain = isTest.length - nTest;
  const rowOf = new Int32Array(isTest.length);
  let tr = 0;
  let te = 0;
  isTest.forEach((t, i) => (rowOf[i] = t ? te++ : tr++));
  const out = widths.map((w) => ({ train: new Float32Array(nTrain * w), test: new Float32Array(nTest * w) }));
  const bySequence = new Map<number, number[]>();
  dataset.examples.forEach((e, i) => {
    const list = bySequence.get(e.sequence);
    if (list) list.push(i);
    else bySequence.set(e.sequence, [i]);
  });
  const perRun = options.windowsPerRun ?? 8;
  const S = dataset.sequences.length;
  for (let s0 = 0; s0 < S; s0 += perRun) {
    if (options.signal?.aborted) throw new CancelledError();
    const batch = dataset.sequences.slice(s0, s0 + perRun).map((s) => s.ids);
    const padded = await model.runHooksPadded(batch, hooks);
    hooks.forEach((hook, k) => {
      const t = padded.hooks.get(hook)!;
      const w = widths[k];
      const T = t.dims[1];
      for (let b = 0; b < batch.length; b++) {
        for (const e of bySequence.get(s0 + b) ?? []) {
          const ex = dataset.examples[e];
          const target = isTest[e] ? out[k].test : out[k].train;
          const at = (p: number): number => (b * T + p) * w;
          if (ex.positions.length === 1) {
            target.set(t.data.subarray(at(ex.positions[0]), at(ex.positions[0]) + w), rowOf[e] * w);
            continue;
          }
          const row = target.subarray(rowOf[e] * w, (rowOf[e] + 1) * w);
          for (const p of ex.positions) {
            const src = t.data.subarray(at(p), at(p) + w);
            for (let j = 0; j < w; j++) row[j] += src[j];
          }
          for (let j = 0; j < w; j++) row[j] /= ex.positions.length;
        }
      }
    });
    for (let b = 0; b < batch.length; b++) onBatch();
  }
  return out;
}
