/**
 * Features grouped and laid out by decoder direction: hierarchical clusters
 * (ml-hclust) cut into a chosen number of groups, and a 2-D map (umap-js).
 * Dead features take part in neither.
 *
 * Clusters: ml-hclust's agglomerative clustering works on a full distance
 * matrix and merges in O(n³) time, which is seconds for ~600 points and
 * hopeless for 16k. So a seeded random sample of at most `sample` live
 * features is clustered with average linkage on cosine distance
 * (1 − cos of decoder directions) and the tree cut into `clusters` groups;
 * every other live feature then joins the cluster of its most similar sampled
 * feature (top-1 cosine, in onnxruntime). With fewer live features than the
 * sample size the clustering is exact.
 *
 * Map: UMAP on cosine distance, fed the precomputed nearest neighbours of
 * every live feature among the live features (top-k cosine in onnxruntime:
 * exact, and far faster than umap-js's own neighbour search), with a seeded
 * random generator, so the same database gives the same map.
 */
import { seededUniform } from '../random';
import { CancelledError } from '../errors';
import { topCosine } from './decoder';

export interface ClusterOptions {
  /** Number of clusters; default √(live / 2), between 2 and 64. */
  readonly clusters?: number;
  /** Most features clustered directly; default 600. */
  readonly sample?: number;
  readonly seed?: number;
  readonly threads?: number;
  readonly signal?: AbortSignal;
}

export interface Clustering {
  /** Cluster of each feature (by feature index), -1 for dead ones. */
  readonly assignment: Int32Array;
  /** Cluster ids 0.. in order of size, largest first; members ascending. */
  readonly clusters: readonly (readonly number[])[];
  readonly note: string;
}

/**
 * @param unit unit decoder rows of all features, [d_sae × d]
 * @param live the live features' indices, ascending
 */
export async function clusterFeatures(
  unit: Float32Array,
  d: number,
  live: Int32Array,
  graphDir: string,
  options: ClusterOptions = {},
): Promise<Clustering> {
  const dSae = unit.length / d;
  const assignment = new Int32Array(dSae).fill(-1);
  const n = live.length;
  if (n === 0) return { assignment, clusters: [], note: 'no live features' };
  const wanted = options.clusters ?? Math.min(64, Math.max(2, Math.round(Math.sqrt(n / 2))));
  const sampleSize = Math.min(n, options.sample ?? 600);
  const rand = seededUniform(options.seed ?? 0);
  const order = Array.from(live);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const sample = order.slice(0, sampleSize).sort((a, b) => a - b);
  const K = Math.max(1, Math.min(wanted, sample.length));

  let groups: number[][];
  if (K >= sample.length) {
    groups = sample.map((_, i) => [i]);
  } else {
    const dist: number[][] = sample.map(() => new Array<number>(sample.length).fill(0));
    for (let i = 0; i < sample.length; i++) {
      const a = sample[i] * d;
      for (let j = 0; j < i; j++) {
        const b = sample[j] * d;
        let dot = 0;
        for (let t = 0; t < d; t++) dot += unit[a + t] * unit[b + t];
        const v = Math.max(0, 1 - dot);
        dist[i][j] = v;
        dist[j][i] = v;
      }
    }
    if (options.signal?.aborted) throw new CancelledError();
    const { agnes } = await import('ml-hclust');
    const tree = agnes(dist, { method: 'average', isDistanceMatrix: true });
    groups = tree.group(K).children.map((c) => c.indices());
  }
  const clusterOf = new Int32Array(sample.length).fill(-1);
  groups.forEach((g, c) => g.forEach((i) => (clusterOf[i] = c)));
  sample.forEach((f, i) => {
    if (clusterOf[i] >= 0) assignment[f] = clusterOf[i];
  });

  // Everything not clustered directly joins its nearest clustered feature.
  const anchors = sample.filter((_, i) => clusterOf[i] >= 0);
  const rest = Array.from(live).filter((f) => assignment[f] < 0);
  if (rest.length > 0 && anchors.length > 0) {
    const near = await topCosine(gather(unit, d, rest), gather(unit, d, anchors), d, 1, graphDir, options);
    rest.forEach((f, i) => (assignment[f] = assignment[anchors[near.indices[i]]]));
  }

  // Renumber by size, largest first.
  const members: number[][] = groups.map(() => []);
  for (const f of live) members[assignment[f]].push(f);
  const ranked = members
    .map((m, c) => ({ m, c }))
    .filter((x) => x.m.length > 0)
    .sort((a, b) => b.m.length - a.m.length || a.m[0] - b.m[0]);
  const renumber = new Int32Array(groups.length).fill(-1);
  ranked.forEach((x, i) => (renumber[x.c] = i));
  for (const f of live) assignment[f] = renumber[assignment[f]];
  const note =
    sampleSize < n
      ? `average-linkage hierarchical clustering (cosine distance of decoder directions) of a random sample of ${sampleSize} of ${n} live features, cut into ${ranked.length} clusters; the others joined the cluster of their most similar sampled feature`
      : `average-linkage hierarchical clustering (cosine distance of decoder directions) of all ${n} live features, cut into ${ranked.length} clusters`;
  return { assignment, clusters: ranked.map((x) => x.m), note };
}

export interface MapOptions {
  readonly neighbors?: number;
  readonly minDist?: number;
  /** UMAP epochs; default 200 (umap-learn's choice for large data; umap-js would take 500 for small maps). */
  readonly epochs?: number;
  readonly seed?: number;
  readonly threads?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (epoch: number, epochs: number) => void;
}

/** 2-D coordinates of the live features, [live × 2], in the order of `live`. */
export async function mapFeatures(
  unit: Float32Array,
  d: number,
  live: Int32Array,
  graphDir: string,
  options: MapOptions = {},
): Promise<Float32Array> {
  const n = live.length;
  const out = new Float32Array(n * 2);
  const nNeighbors = Math.min(options.neighbors ?? 15, n - 1);
  if (n < 4 || nNeighbors < 2) {
    // Too few points for UMAP: a circle, in index order.
    for (let i = 0; i < n; i++) {
      out[2 * i] = Math.cos((2 * Math.PI * i) / Math.max(1, n));
      out[2 * i + 1] = Math.sin((2 * Math.PI * i) / Math.max(1, n));
    }
    return out;
  }
  const rows = gather(unit, d, Array.from(live));
  const self = Int32Array.from({ length: n }, (_, i) => i);
  const near = await topCosine(rows, rows, d, nNeighbors - 1, graphDir, {
    threads: options.threads,
    signal: options.signal,
    aIndex: self,
  });
  const knnIndices: number[][] = [];
  const knnDistances: number[][] = [];
  for (let i = 0; i < n; i++) {
    const idx = [i];
    const dist = [0];
    for (let j = 0; j < near.k; j++) {
      const x = near.indices[i * near.k + j];
      if (x < 0) continue;
      idx.push(x);
      dist.push(Math.max(0, 1 - near.values[i * near.k + j]));
    }
    while (idx.length < nNeighbors) {
      idx.push(-1);
      dist.push(0);
    }
    knnIndices.push(idx);
    knnDistances.push(dist);
  }
  const { UMAP } = await import('umap-js');
  const umap = new UMAP({
    nComponents: 2,
    nNeighbors,
    minDist: options.minDist ?? 0.1,
    nEpochs: options.epochs ?? 200,
    random: seededUniform(options.seed ?? 0),
  });
  umap.setPrecomputedKNN(knnIndices, knnDistances);
  const X: number[][] = [];
  for (let i = 0; i < n; i++) X.push(Array.from(rows.subarray(i * d, (i + 1) * d)));
  const epochs = umap.initializeFit(X);
  for (let e = 0; e < epochs; e++) {
    umap.step();
    if (e % 20 === 19 || e === epochs - 1) {
      if (options.signal?.aborted) throw new CancelledError();
      options.onProgress?.(e + 1, epochs);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  const emb = umap.getEmbedding();
  for (let i = 0; i < n; i++) {
    out[2 * i] = emb[i][0];
    out[2 * i + 1] = emb[i][1];
  }
  return out;
}

export function gather(rows: Float32Array, d: number, which: readonly number[]): Float32Array {
  const out = new Float32Array(which.length * d);
  which.forEach((r, i) => out.set(rows.subarray(r * d, (r + 1) * d), i * d));
  return out;
}
