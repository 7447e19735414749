/**
 * Limited-memory BFGS (Nocedal & Wright, "Numerical Optimization", 2nd ed.,
 * Algorithm 7.4 for the two-loop recursion, 7.5 for the outer loop) with a
 * backtracking line search on the Armijo condition (or, where the loss is
 * computed in float32, Hager & Zhang's approximate Wolfe conditions, which
 * read the gradient when the loss cannot resolve a decrease). A curvature pair is kept
 * only when sᵀy > 0, so the implicit Hessian stays positive definite without a
 * full Wolfe search. Works in float64; the objective may be computed in
 * float32 (onnxruntime), in which case the search stops once no step is
 * acceptable by either test.
 */
import { CancelledError } from '../errors';

export interface Objective {
  /** The value and gradient at θ (the gradient written into `grad`). */
  (theta: Float64Array, grad: Float64Array): Promise<number>;
}

export interface LbfgsOptions {
  readonly maxIterations?: number;
  /** Stop when max |gradient| falls below this. */
  readonly gradientTolerance?: number;
  /** Stop when the loss changes by less than this, relatively, over one iteration. */
  readonly relativeTolerance?: number;
  /** Curvature pairs kept. */
  readonly memory?: number;
  /** Relative rounding noise of the objective's value (about 1e-6 for float32 sums); 0 for float64. */
  readonly valueNoise?: number;
  readonly signal?: AbortSignal;
}

export interface LbfgsResult {
  readonly theta: Float64Array;
  readonly value: number;
  readonly iterations: number;
  /** Met a tolerance (rather than the iteration limit or a stalled line search). */
  readonly converged: boolean;
  readonly gradientMax: number;
}

export async function minimizeLbfgs(
  objective: Objective,
  start: Float64Array,
  options: LbfgsOptions = {},
): Promise<LbfgsResult> {
  const maxIterations = options.maxIterations ?? 200;
  const gtol = options.gradientTolerance ?? 1e-5;
  const ftol = options.relativeTolerance ?? 1e-10;
  const m = options.memory ?? 10;
  const noise = options.valueNoise ?? 0;
  const n = start.length;
  let x = Float64Array.from(start);
  let g = new Float64Array(n);
  let f = await objective(x, g);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const alpha = new Float64Array(m);
  let xNew = new Float64Array(n);
  let gNew = new Float64Array(n);
  const dir = new Float64Array(n);
  let iterations = 0;
  let converged = maxAbs(g) < gtol;
  while (!converged && iterations < maxIterations) {
    if (options.signal?.aborted) throw new CancelledError();
    // Two-loop recursion: dir = −H·g.
    dir.set(g);
    for (let i = S.length - 1; i >= 0; i--) {
      alpha[i] = rho[i] * dot(S[i], dir);
      axpy(-alpha[i], Y[i], dir);
    }
    const gamma = S.length
      ? dot(S[S.length - 1], Y[Y.length - 1]) / dot(Y[Y.length - 1], Y[Y.length - 1])
      : 1;
    for (let i = 0; i < n; i++) dir[i] *= gamma;
    for (let i = 0; i < S.length; i++) {
      const beta = rho[i] * dot(Y[i], dir);
      axpy(alpha[i] - beta, S[i], dir);
    }
    for (let i = 0; i < n; i++) dir[i] = -dir[i];
    let slope = dot(g, dir);
    if (!(slope < 0)) {
      // Not a descent direction (curvature lost to rounding): restart from steepest descent.
      S.length = 0;
      Y.length = 0;
      rho.length = 0;
      for (let i = 0; i < n; i++) dir[i] = -g[i];
      slope = -dot(g, g);
    }
    // The first step has no curvature to scale it: keep its length at most 1.
    let step = S.length === 0 ? Math.min(1, 1 / Math.sqrt(-slope)) : 1;
    let fNew = NaN;
    let accepted = false;
    for (let tries = 0; tries < 30; tries++) {
      for (let i = 0; i < n; i++) xNew[i] = x[i] + step * dir[i];
      fNew = await objective(xNew, gNew);
      if (Number.isFinite(fNew) && fNew <= f + 1e-4 * step * slope) {
        accepted = true;
        break;
      }
      // Near the minimum a float32 loss cannot resolve the decrease; the gradient still can
      // (Hager & Zhang's approximate Wolfe conditions, with δ = 0.1, σ = 0.9).
      const slopeNew = dot(gNew, dir);
      if (fNew <= f + noise * Math.abs(f) && slopeNew >= 0.9 * slope && slopeNew <= -0.8 * slope) {
        accepted = true;
        break;
      }
      step *= 0.5;
    }
    iterations++;
    if (!accepted) break; // the loss no longer falls measurably along any step: as good as it gets
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = xNew[i] - x[i];
      y[i] = gNew[i] - g[i];
    }
    const sy = dot(s, y);
    if (sy > 1e-12 * Math.sqrt(dot(s, s) * dot(y, y))) {
      if (S.length === m) {
        S.shift();
        Y.shift();
        rho.shift();
      }
      S.push(s);
      Y.push(y);
      rho.push(1 / sy);
    }
    const fOld = f;
    [x, xNew] = [xNew, x];
    [g, gNew] = [gNew, g];
    f = fNew;
    if (maxAbs(g) < gtol) converged = true;
    else if (Math.abs(fOld - f) <= ftol * Math.max(1, Math.abs(f))) converged = true;
  }
  return { theta: x, value: f, iterations, converged, gradientMax: maxAbs(g) };
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function axpy(a: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < x.length; i++) y[i] += a * x[i];
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
