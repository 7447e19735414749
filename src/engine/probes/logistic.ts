/**
 * L2-regularised logistic regression: binary (one weight vector, the logit of
 * class 1 against class 0) and multinomial softmax for more classes (one
 * vector per class, as scikit-learn's multinomial solver), on standardised
 * features, with an unpenalised bias:
 *
 *   minimise  mean_i −log softmax(z_i)[y_i] + (λ/2)·‖W_std‖²,   z_i = W_std·(x_i − μ)/σ + b
 *
 * μ and σ are the training rows' mean and (population) standard deviation per
 * feature. The solver is L-BFGS preconditioned by the Hessian at the start,
 * c·Corr + λI (c = 1/4 for two classes, 1/K for K), through its Cholesky
 * factor: residual-stream features are strongly correlated, and in the
 * whitened coordinates the problem is close to isotropic, so L-BFGS needs tens
 * of passes over the data rather than hundreds. Large problems compute the
 * loss and gradient in onnxruntime (float32 products, float64 parameters);
 * small ones in float64 JavaScript. Several tasks on the same rows (a probe
 * and its control task) are fitted together in one pass per iteration: the
 * objective is their sum, which separates.
 *
 * The result is returned in the raw activation space (score = w·x + b), so it
 * applies to activations as they come out of the model.
 */
import * as os from 'node:os';
import { CancelledError, LoupeError } from '../errors';
import { minimizeLbfgs } from './lbfgs';
import { LOGISTIC_IO, probeGraphSession } from './logisticGraph';

export interface LogisticOptions {
  /** Number of classes K (≥ 2); targets are 0..K−1. */
  readonly classes: number;
  /** λ, the L2 penalty on the standardised weights (per mean example). Default 1e-3. */
  readonly l2?: number;
  readonly maxIterations?: number;
  /** Stop when the largest gradient entry falls below this. Default 1e-6 (float64), 1e-5 (onnxruntime). */
  readonly tolerance?: number;
  /** 'onnx' computes the objective in onnxruntime, 'js' in float64 here; 'auto' picks by size. */
  readonly backend?: 'auto' | 'onnx' | 'js';
  /** onnxruntime's threads; default one per core. */
  readonly threads?: number;
  /** Centre `x` in place instead of copying it (the caller's buffer is then changed). */
  readonly overwrite?: boolean;
  readonly signal?: AbortSignal;
}

/** A linear classifier in the raw activation space. */
export interface LinearClassifier {
  readonly classes: number;
  readonly dim: number;
  /** [outputs, dim]: one row for two classes (class 1's logit against class 0), else one per class. */
  readonly weight: Float32Array;
  readonly bias: Float32Array;
}

export interface LogisticFit {
  /** One per task, in the order given. */
  readonly classifiers: LinearClassifier[];
  /** Mean cross-entropy on the training rows, per task, without the penalty. */
  readonly trainLoss: number[];
  readonly trainAccuracy: number[];
  readonly iterations: number;
  readonly converged: boolean;
}

/** Problems up to this many multiply-adds per pass run in float64 JavaScript under 'auto'. */
const JS_WORK_LIMIT = 4_000_000;

/**
 * Fits one classifier per task on rows x [n, d]; each task gives a class in
 * 0..K−1 for every row.
 */
export async function fitLogistic(
  x: Float32Array,
  n: number,
  d: number,
  tasks: readonly Int32Array[],
  options: LogisticOptions,
): Promise<LogisticFit> {
  const K = options.classes;
  const G = tasks.length;
  const l2 = options.l2 ?? 1e-3;
  if (!Number.isInteger(K) || K < 2)
    throw new LoupeError(`logistic regression needs at least 2 classes, not ${K}`);
  if (!(l2 >= 0) || !Number.isFinite(l2)) throw new LoupeError(`the L2 penalty must be ≥ 0, not ${l2}`);
  if (n < 1 || x.length !== n * d) throw new Error(`rows: ${x.length} values for [${n}, ${d}]`);
  if (G < 1) throw new Error('fitLogistic needs at least one task');
  for (const t of tasks) {
    if (t.length !== n) throw new Error(`a task has ${t.length} targets for ${n} rows`);
    for (let i = 0; i < n; i++) {
      if (!(t[i] >= 0 && t[i] < K)) throw new Error(`target ${t[i]} is outside 0..${K - 1}`);
    }
  }
  const backend =
    options.backend === 'onnx' || (options.backend !== 'js' && n * d * G * K > JS_WORK_LIMIT) ? 'onnx' : 'js';
  const threads = options.threads ?? Math.max(1, os.availableParallelism());

  // Standardisation: centre the rows (in float32, once); scaling by σ is folded into the weights.
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  const xc = options.overwrite ? x : new Float32Array(x.length);
  const variance = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const v = x[i * d + j] - mean[j];
      xc[i * d + j] = v;
      variance[j] += v * v;
    }
  }
  let maxSd = 0;
  const sd = new Float64Array(d);
  for (let j = 0; j < d; j++) maxSd = Math.max(maxSd, (sd[j] = Math.sqrt(variance[j] / n)));
  // A constant feature carries nothing; scaling it by 1 keeps it inert instead of dividing by zero.
  for (let j = 0; j < d; j++) if (!(sd[j] > 1e-7 * maxSd)) sd[j] = 1;

  // Preconditioner: H0 = c·Corr + λI = L Lᵀ; parameters are V = Lᵀ W_std (per output row) and β = √c·b.
  const gram = backend === 'onnx' ? await gramOnnx(xc, n, d, threads) : gramJs(xc, n, d);
  const c = K === 2 ? 0.25 : 1 / K;
  const h0 = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    for (let k = 0; k < d; k++) h0[j * d + k] = (c * gram[j * d + k]) / (n * sd[j] * sd[k]);
    h0[j * d + j] += Math.max(l2, 1e-8);
  }
  const L = cholesky(h0, d);
  const sqrtC = Math.sqrt(c);

  const outputs = K === 2 ? 1 : K;
  const perTask = outputs * d + outputs;
  const decode = (theta: Float64Array, t: number): { w: Float64Array; b: Float64Array } => {
    const w = new Float64Array(outputs * d);
    const b = new Float64Array(outputs);
    const base = t * perTask;
    for (let r = 0; r < outputs; r++) {
      w.set(solveUpperTransposed(L, theta.subarray(base + r * d, base + (r + 1) * d), d), r * d);
      b[r] = theta[base + outputs * d + r] / sqrtC;
    }
    return { w, b };
  };

  const evaluate =
    backend === 'onnx' ? await onnxObjective(xc, n, d, tasks, K, threads) : jsObjective(xc, n, d, tasks, K);
  const wEff = new Float64Array(d * G * K);
  const bEff = new Float64Array(G * K);
  const gradW = new Float64Array(d * G * K);
  const gradB = new Float64Array(G * K);
  let taskLosses: number[] = [];
  const objective = async (theta: Float64Array, grad: Float64Array): Promise<number> => {
    if (options.signal?.aborted) throw new CancelledError();
    wEff.fill(0);
    bEff.fill(0);
    let penalty = 0;
    const decoded = tasks.map((_, t) => decode(theta, t));
    decoded.forEach(({ w, b }, t) => {
      for (let r = 0; r < outputs; r++) {
        const col = t * K + (K === 2 ? 1 : r);
        for (let j = 0; j < d; j++) {
          wEff[j * G * K + col] = w[r * d + j] / sd[j];
          penalty += 0.5 * l2 * w[r * d + j] * w[r * d + j];
        }
        bEff[col] = b[r];
      }
    });
    taskLosses = await evaluate(wEff, bEff, gradW, gradB);
    const gStd = new Float64Array(d);
    decoded.forEach(({ w }, t) => {
      const base = t * perTask;
      for (let r = 0; r < outputs; r++) {
        const col = t * K + (K === 2 ? 1 : r);
        for (let j = 0; j < d; j++) gStd[j] = gradW[col * d + j] / sd[j] + l2 * w[r * d + j];
        grad.set(solveLower(L, gStd, d), base + r * d);
        grad[base + outputs * d + r] = gradB[col] / sqrtC;
      }
    });
    return taskLosses.reduce((a, v) => a + v, 0) + penalty;
  };

  const result = await minimizeLbfgs(objective, new Float64Array(G * perTask), {
    maxIterations: options.maxIterations ?? 300,
    gradientTolerance: options.tolerance ?? (backend === 'onnx' ? 1e-4 : 1e-7),
    relativeTolerance: backend === 'onnx' ? 1e-9 : 1e-13,
    valueNoise: backend === 'onnx' ? 1e-6 : 0,
    signal: options.signal,
  });
  await objective(result.theta, new Float64Array(G * perTask)); // the per-task losses at the solution

  const classifiers = tasks.map((_, t): LinearClassifier => {
    const { w, b } = decode(result.theta, t);
    const weight = new Float32Array(outputs * d);
    const bias = new Float32Array(outputs);
    for (let r = 0; r < outputs; r++) {
      let shift = 0;
      for (let j = 0; j < d; j++) {
        const raw = w[r * d + j] / sd[j];
        weight[r * d + j] = raw;
        shift += raw * mean[j];
      }
      bias[r] = b[r] - shift;
    }
    return { classes: K, dim: d, weight, bias };
  });
  // Training accuracy on the centred rows, where the classifier's bias is b before the mean shift.
  const trainAccuracy = tasks.map((targets, t) => {
    const { w, b } = decode(result.theta, t);
    const scaled = new Float32Array(outputs * d);
    for (let r = 0; r < outputs; r++) for (let j = 0; j < d; j++) scaled[r * d + j] = w[r * d + j] / sd[j];
    const predicted = predictClasses(
      { classes: K, dim: d, weight: scaled, bias: Float32Array.from(b) },
      xc,
      n,
    );
    let right = 0;
    for (let i = 0; i < n; i++) if (predicted[i] === targets[i]) right++;
    return right / n;
  });
  return {
    classifiers,
    trainLoss: taskLosses,
    trainAccuracy,
    iterations: result.iterations,
    converged: result.converged,
  };
}

/** Each row's class scores [n, K] (binary: [0, logit]). */
export function classifierLogits(c: LinearClassifier, x: Float32Array, n: number): Float32Array {
  const { classes: K, dim: d } = c;
  const outputs = K === 2 ? 1 : K;
  if (x.length !== n * d) throw new Error(`rows: ${x.length} values for [${n}, ${d}]`);
  const out = new Float32Array(n * K);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < outputs; r++) {
      let z = c.bias[r];
      for (let j = 0; j < d; j++) z += c.weight[r * d + j] * x[i * d + j];
      out[i * K + (K === 2 ? 1 : r)] = z;
    }
  }
  return out;
}

/** The most likely class of each row (ties: the lower class). */
export function predictClasses(c: LinearClassifier, x: Float32Array, n: number): Int32Array {
  const logits = classifierLogits(c, x, n);
  const K = c.classes;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let k = 1; k < K; k++) if (logits[i * K + k] > logits[i * K + best]) best = k;
    out[i] = best;
  }
  return out;
}

/** Class probabilities of one row of scores, in place. */
export function softmaxInPlace(row: Float32Array | Float64Array): void {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (let k = 0; k < row.length; k++) sum += row[k] = Math.exp(row[k] - max);
  for (let k = 0; k < row.length; k++) row[k] /= sum;
}

type Evaluate = (
  w: Float64Array,
  b: Float64Array,
  gradW: Float64Array,
  gradB: Float64Array,
) => Promise<number[]>;

/** Loss per task and gradients w.r.t. the effective weights (as [G·K, d]) and biases, in float64. */
function jsObjective(
  x: Float32Array,
  n: number,
  d: number,
  tasks: readonly Int32Array[],
  K: number,
): Evaluate {
  const G = tasks.length;
  const GK = G * K;
  const z = new Float64Array(GK);
  return (w, b, gradW, gradB) => {
    gradW.fill(0);
    gradB.fill(0);
    const losses = new Array<number>(G).fill(0);
    for (let i = 0; i < n; i++) {
      z.set(b);
      for (let j = 0; j < d; j++) {
        const v = x[i * d + j];
        if (v === 0) continue;
        for (let c = 0; c < GK; c++) z[c] += v * w[j * GK + c];
      }
      for (let t = 0; t < G; t++) {
        const o = t * K;
        let max = -Infinity;
        for (let k = 0; k < K; k++) max = Math.max(max, z[o + k]);
        let sum = 0;
        for (let k = 0; k < K; k++) sum += Math.exp(z[o + k] - max);
        const lse = max + Math.log(sum);
        const y = tasks[t][i];
        losses[t] -= z[o + y] - lse;
        for (let k = 0; k < K; k++) z[o + k] = Math.exp(z[o + k] - lse) - (k === y ? 1 : 0);
      }
      for (let c = 0; c < GK; c++) gradB[c] += z[c];
      for (let j = 0; j < d; j++) {
        const v = x[i * d + j];
        if (v === 0) continue;
        for (let c = 0; c < GK; c++) gradW[c * d + j] += v * z[c];
      }
    }
    for (let c = 0; c < gradW.length; c++) gradW[c] /= n;
    for (let c = 0; c < GK; c++) gradB[c] /= n;
    return Promise.resolve(losses.map((l) => l / n));
  };
}

/** The same objective in onnxruntime: float32 products, results widened to float64. */
async function onnxObjective(
  x: Float32Array,
  n: number,
  d: number,
  tasks: readonly Int32Array[],
  K: number,
  threads: number,
): Promise<Evaluate> {
  const session = await probeGraphSession('objective', threads);
  const G = tasks.length;
  const y = new Float32Array(n * G * K);
  tasks.forEach((t, g) => {
    for (let i = 0; i < n; i++) y[i * G * K + g * K + t[i]] = 1;
  });
  const io = LOGISTIC_IO;
  const w32 = new Float32Array(d * G * K);
  const b32 = new Float32Array(G * K);
  return async (w, b, gradW, gradB) => {
    w32.set(w);
    b32.set(b);
    const out = await session.run(
      {
        [io.x]: { type: 'float32', dims: [n, d], data: x },
        [io.w]: { type: 'float32', dims: [d, G * K], data: w32 },
        [io.b]: { type: 'float32', dims: [G * K], data: b32 },
        [io.y]: { type: 'float32', dims: [n, G * K], data: y },
        [io.groups]: { type: 'int64', dims: [3], data: new BigInt64Array([0n, BigInt(G), BigInt(K)]) },
        [io.invN]: { type: 'float32', dims: [], data: new Float32Array([1 / n]) },
      },
      [io.loss, io.gradW, io.gradB],
    );
    gradW.set(out.get(io.gradW)!.data);
    gradB.set(out.get(io.gradB)!.data);
    const rowLoss = out.get(io.loss)!.data;
    const losses = new Array<number>(G).fill(0);
    for (let i = 0; i < n; i++) for (let g = 0; g < G; g++) losses[g] += rowLoss[i * G + g];
    return losses.map((l) => l / n);
  };
}

function gramJs(x: Float32Array, n: number, d: number): Float64Array {
  const gram = new Float64Array(d * d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const v = x[i * d + j];
      if (v === 0) continue;
      for (let k = j; k < d; k++) gram[j * d + k] += v * x[i * d + k];
    }
  }
  for (let j = 0; j < d; j++) for (let k = 0; k < j; k++) gram[j * d + k] = gram[k * d + j];
  return gram;
}

async function gramOnnx(x: Float32Array, n: number, d: number, threads: number): Promise<Float64Array> {
  const session = await probeGraphSession('gram', threads);
  const out = await session.run({ [LOGISTIC_IO.x]: { type: 'float32', dims: [n, d], data: x } }, [
    LOGISTIC_IO.gram,
  ]);
  return Float64Array.from(out.get(LOGISTIC_IO.gram)!.data);
}

/** Lower Cholesky factor of a symmetric positive definite [d, d] matrix. */
function cholesky(a: Float64Array, d: number): Float64Array {
  const L = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    let s = a[j * d + j];
    for (let k = 0; k < j; k++) s -= L[j * d + k] * L[j * d + k];
    if (!(s > 0)) throw new Error('the preconditioner is not positive definite');
    const ljj = Math.sqrt(s);
    L[j * d + j] = ljj;
    for (let i = j + 1; i < d; i++) {
      let t = a[i * d + j];
      for (let k = 0; k < j; k++) t -= L[i * d + k] * L[j * d + k];
      L[i * d + j] = t / ljj;
    }
  }
  return L;
}

/** Solves L·u = v (forward substitution). */
function solveLower(L: Float64Array, v: ArrayLike<number>, d: number): Float64Array {
  const u = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let s = v[i];
    for (let k = 0; k < i; k++) s -= L[i * d + k] * u[k];
    u[i] = s / L[i * d + i];
  }
  return u;
}

/** Solves Lᵀ·u = v (back substitution). */
function solveUpperTransposed(L: Float64Array, v: ArrayLike<number>, d: number): Float64Array {
  const u = new Float64Array(d);
  for (let i = d - 1; i >= 0; i--) {
    let s = v[i];
    for (let k = i + 1; k < d; k++) s -= L[k * d + i] * u[k];
    u[i] = s / L[i * d + i];
  }
  return u;
}
