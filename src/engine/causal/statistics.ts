/**
 * The two-sided two-sample t-test TCAV's significance rests on (Kim et al.
 * 2018 compare concept TCAV scores with random ones by Student's t-test, as
 * scipy.stats.ttest_ind does by default: pooled variance, n₁ + n₂ − 2 degrees
 * of freedom).
 *
 * The Student-t tail comes from the regularised incomplete beta function:
 * for t with ν degrees of freedom, P(|T| ≥ |t|) = I_x(ν/2, 1/2) with
 * x = ν / (ν + t²) (Abramowitz & Stegun 26.7.1 with 26.5.27). I_x(a, b) is
 * evaluated by its continued fraction (A&S 26.5.8) with the modified Lentz
 * method, on whichever of I_x(a, b) = 1 − I_{1−x}(b, a) converges fast
 * (Press et al., Numerical Recipes, 3rd ed., §6.4); ln Γ by Lanczos's
 * approximation (g = 7, n = 9), good to about 1e-15.
 */

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0. */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x); // reflection
  const z = x - 1;
  let a = LANCZOS[0];
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** The regularised incomplete beta function I_x(a, b), for a, b > 0 and 0 ≤ x ≤ 1. */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (!(a > 0 && b > 0)) throw new RangeError(`incomplete beta needs a, b > 0 (got ${a}, ${b})`);
  if (!(x >= 0 && x <= 1)) throw new RangeError(`incomplete beta needs 0 ≤ x ≤ 1 (got ${x})`);
  if (x === 0 || x === 1) return x;
  const logFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x);
  // The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(logFront) * betaContinuedFraction(x, a, b)) / a;
  return 1 - (Math.exp(logFront) * betaContinuedFraction(1 - x, b, a)) / b;
}

function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  const eps = 1e-15;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 10000; m++) {
    const m2 = 2 * m;
    // Even step: d_{2m} = m (b − m) x / ((a + 2m − 1)(a + 2m)).
    let num = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    // Odd step: d_{2m+1} = −(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)).
    num = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < eps) return h;
  }
  return h;
}

/** P(|T| ≥ |t|) for Student's t with `df` degrees of freedom. */
export function studentTwoSidedP(t: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`degrees of freedom must be positive (got ${df})`);
  if (Number.isNaN(t)) return NaN;
  if (!Number.isFinite(t)) return 0;
  return regularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5);
}

export interface TTest {
  readonly t: number;
  readonly df: number;
  /** Two-sided p-value. */
  readonly p: number;
}

/** Student's two-sample t-test with pooled variance (scipy.stats.ttest_ind's default). */
export function tTestIndependent(a: readonly number[], b: readonly number[]): TTest {
  const n1 = a.length;
  const n2 = b.length;
  if (n1 < 2 || n2 < 2) throw new RangeError('a t-test needs at least two values in each sample');
  const mean = (v: readonly number[]): number => v.reduce((s, x) => s + x, 0) / v.length;
  const m1 = mean(a);
  const m2 = mean(b);
  const ss = (v: readonly number[], m: number): number => v.reduce((s, x) => s + (x - m) * (x - m), 0);
  const df = n1 + n2 - 2;
  const pooled = (ss(a, m1) + ss(b, m2)) / df;
  const se = Math.sqrt(pooled * (1 / n1 + 1 / n2));
  if (se === 0) {
    // Both samples constant: identical means are no evidence of a difference, different ones are certain.
    return m1 === m2 ? { t: 0, df, p: 1 } : { t: m1 > m2 ? Infinity : -Infinity, df, p: 0 };
  }
  const t = (m1 - m2) / se;
  return { t, df, p: studentTwoSidedP(t, df) };
}

/**
 * Whether one value x₀ belongs with a sample: Student's t for a new
 * observation from the sample's normal population, t = (x₀ − mean) /
 * (sd·√(1 + 1/n)), with n − 1 degrees of freedom (the prediction interval),
 * two-sided.
 */
export function tTestNewObservation(x0: number, sample: readonly number[]): TTest {
  const n = sample.length;
  if (n < 2) throw new RangeError('a t-test needs at least two values in the sample');
  const mean = sample.reduce((s, x) => s + x, 0) / n;
  const sd = Math.sqrt(sample.reduce((s, x) => s + (x - mean) * (x - mean), 0) / (n - 1));
  const df = n - 1;
  if (sd === 0) return x0 === mean ? { t: 0, df, p: 1 } : { t: x0 > mean ? Infinity : -Infinity, df, p: 0 };
  const t = (x0 - mean) / (sd * Math.sqrt(1 + 1 / n));
  return { t, df, p: studentTwoSidedP(t, df) };
}
