/**
 * TextSpan (Gandelsman et al. 2023) for one head, from the moments of its
 * outputs rather than the outputs themselves.
 *
 * The authors' algorithm (their `replace_with_iterative_removal`) on a head's
 * outputs X [N × d] and a pool of text directions T [M × d]:
 *   1. project the pool onto the span of X's top `rank` right singular
 *      vectors (uncentred X);
 *   2. centre X;
 *   3. m times: pick the pool row t whose projections X·t have the largest
 *      standard deviation, then remove t's direction from X and from every
 *      pool row.
 *
 * Here X = Ẑ·R: Ẑ [N × k] the head's z read through the final norm's
 * cached scale (z / scale), R [k × d] its output weights (centred over
 * d_model for LayerNorm; hook_result = z·W_O). Everything the algorithm needs
 * follows from E[ẑẑᵀ] and E[ẑ] (k × k and k, with k = d_head), so the corpus
 * pass keeps those and never the outputs: the top singular directions are
 * the eigenvectors of E[xxᵀ] = Rᵀ·E[ẑẑᵀ]·R; the variance of the centred
 * outputs along a unit t is tᵀ(E[xxᵀ] − μμᵀ)t with μ = Rᵀ·E[ẑ]; and removing
 * chosen directions from X leaves a pool row's score tᵀCt unchanged once the
 * same directions are removed from t (t is then orthogonal to them). Working
 * in the coordinates of the top-rank basis V, where E[xxᵀ] is diagonal
 * (eigenvalues λ), a pool row's score is Σ λ_i t_i² − (μ_V·t)², O(rank).
 *
 * Deviations from the authors' code, both documented for the user: the
 * basis keeps at most `rank` directions but never directions along which the
 * outputs have (numerically) no variance (below 1e-6 of the largest; a head's
 * outputs span at most d_head dimensions, and the authors' rank 80 would
 * otherwise keep arbitrary null directions); and scores are variances (the
 * same argmax as standard deviations).
 */
import { orthonormalizeRows, symmetricEigen } from './linalg';

/** Singular directions with less variance than this fraction of the largest are not used. */
export const RANK_CUTOFF = 1e-6;

export interface HeadOutputMoments {
  /** k = d_head. */
  readonly k: number;
  readonly d: number;
  /** E[ẑẑᵀ], [k × k]. */
  readonly second: Float64Array;
  /** E[ẑ], [k]. */
  readonly mean: Float64Array;
  /** R, [k × d]: a row of Ẑ times R is the head's output as the final norm reads it. */
  readonly readout: Float64Array;
}

export interface HeadBasis {
  /** Directions kept, ≤ rank. */
  readonly rank: number;
  readonly d: number;
  /** Orthonormal rows [rank × d]: the outputs' top singular directions. */
  readonly basis: Float64Array;
  /** Eigenvalues of E[xxᵀ] along the basis, [rank]. */
  readonly lambda: Float64Array;
  /** The outputs' mean in basis coordinates, [rank]. */
  readonly meanCoords: Float64Array;
  /** Total variance of the centred outputs: trace(E[xxᵀ]) − |μ|². */
  readonly totalVariance: number;
}

export function headBasis(m: HeadOutputMoments, maxRank: number): HeadBasis {
  const { k, d } = m;
  // E[xxᵀ] = Rᵀ·M·R = BᵀB with B = Λ^½·Uᵀ·R (M = U·Λ·Uᵀ); its eigenvectors are B's right singular vectors.
  const mEig = symmetricEigen(m.second, k);
  const B = new Float64Array(k * d);
  for (let i = 0; i < k; i++) {
    const s = Math.sqrt(Math.max(0, mEig.values[i]));
    for (let a = 0; a < k; a++) {
      const f = s * mEig.vectors[i * k + a];
      if (f === 0) continue;
      for (let j = 0; j < d; j++) B[i * d + j] += f * m.readout[a * d + j];
    }
  }
  const G = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let a = i; a < k; a++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += B[i * d + j] * B[a * d + j];
      G[i * k + a] = G[a * k + i] = s;
    }
  }
  const gEig = symmetricEigen(G, k);
  let trace = 0;
  for (let i = 0; i < k; i++) trace += Math.max(0, gEig.values[i]);
  const top = Math.max(0, gEig.values[0]);
  let rank = 0;
  while (rank < Math.min(maxRank, k) && gEig.values[rank] > RANK_CUTOFF * top) rank++;
  const basis = new Float64Array(rank * d);
  for (let r = 0; r < rank; r++) {
    const inv = 1 / Math.sqrt(gEig.values[r]);
    for (let i = 0; i < k; i++) {
      const f = gEig.vectors[r * k + i] * inv;
      for (let j = 0; j < d; j++) basis[r * d + j] += f * B[i * d + j];
    }
  }
  orthonormalizeRows(basis, rank, d);
  const mu = new Float64Array(d);
  for (let a = 0; a < k; a++) for (let j = 0; j < d; j++) mu[j] += m.mean[a] * m.readout[a * d + j];
  let muSq = 0;
  for (let j = 0; j < d; j++) muSq += mu[j] * mu[j];
  const meanCoords = new Float64Array(rank);
  for (let r = 0; r < rank; r++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += basis[r * d + j] * mu[j];
    meanCoords[r] = s;
  }
  return {
    rank,
    d,
    basis,
    lambda: Float64Array.from(gEig.values.subarray(0, rank)),
    meanCoords,
    totalVariance: Math.max(0, trace - muSq),
  };
}

export interface ChosenDirection {
  /** Row of the pool. */
  readonly index: number;
  /** Variance of the (remaining) outputs along the direction. */
  readonly variance: number;
  /** variance / the head's total variance. */
  readonly fraction: number;
}

/**
 * The greedy steps on pool rows already in basis coordinates ([M × rank],
 * as the pool's unit rows projected onto the basis); `coords` is consumed
 * (chosen directions are removed from it).
 */
export function greedyDirections(head: HeadBasis, coords: Float64Array, steps: number): ChosenDirection[] {
  const r = head.rank;
  if (r === 0) return [];
  const M = coords.length / r;
  const { lambda, meanCoords: mu } = head;
  const chosen: ChosenDirection[] = [];
  const u = new Float64Array(r);
  for (let step = 0; step < Math.min(steps, r); step++) {
    let best = -1;
    let bestScore = -Infinity;
    for (let t = 0; t < M; t++) {
      const o = t * r;
      let quad = 0;
      let dot = 0;
      for (let i = 0; i < r; i++) {
        const x = coords[o + i];
        quad += lambda[i] * x * x;
        dot += mu[i] * x;
      }
      const score = quad - dot * dot;
      if (score > bestScore) {
        bestScore = score;
        best = t;
      }
    }
    let norm = 0;
    for (let i = 0; i < r; i++) norm += coords[best * r + i] ** 2;
    if (!(norm > 0)) break;
    const inv = 1 / Math.sqrt(norm);
    for (let i = 0; i < r; i++) u[i] = coords[best * r + i] * inv;
    const variance = Math.max(0, bestScore / norm);
    chosen.push({
      index: best,
      variance,
      fraction: head.totalVariance > 0 ? variance / head.totalVariance : 0,
    });
    for (let t = 0; t < M; t++) {
      const o = t * r;
      let a = 0;
      for (let i = 0; i < r; i++) a += coords[o + i] * u[i];
      if (a !== 0) for (let i = 0; i < r; i++) coords[o + i] -= a * u[i];
    }
  }
  return chosen;
}
