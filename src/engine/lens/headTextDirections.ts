/**
 * Per-head text directions (TextSpan, Gandelsman et al. 2023) for every
 * attention head of a model over a corpus: one pass for the heads' output
 * moments (headMoments.ts), then for each head its top singular directions,
 * the pool projected onto them (one onnxruntime product per layer) and the
 * greedy choice (textSpan.ts). Results are cached beside the compiled model,
 * keyed by the windows' token ids, the pool and the options, so asking again
 * costs nothing.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { arrayOf, literal, nonNegInt, nullable, num, openObject, str } from '../../shared/schema';
import { readCorpus } from '../corpus';
import { CancelledError, LoupeError } from '../errors';
import { GraphBuilder } from '../graph/builder';
import { HookedModel } from '../model';
import { GraphSession } from '../runtime';
import { isPresent } from '../inputFiles';
import { contextWindows } from '../sae/activations';
import { JSON_KINDS, readJsonFile } from '../untrustedJson';
import { readEngineWeight } from './engineWeights';
import { collectHeadMoments } from './headMoments';
import { PoolSpec, TextPool, buildTextPool } from './textPool';
import { HeadBasis, HeadOutputMoments, greedyDirections, headBasis } from './textSpan';
import { writeFileAtomic } from '../safeWrite';

/** Bump when results would change for the same inputs, so old cache entries are not reused. */
const CACHE_VERSION = 1;

export interface TextSpanOptions {
  /** Token windows to read (each as the model runs it, BOS first when the model has one). */
  readonly windows: readonly (readonly number[])[];
  readonly pool?: PoolSpec;
  /** Directions per head (the authors' texts_per_head); default 10. */
  readonly steps?: number;
  /** The most singular directions the pool is projected onto (the authors' w_ov_rank); default 80. */
  readonly rank?: number;
  /** Read and write the cache beside the compiled model; default true. */
  readonly cache?: boolean;
  readonly threads?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: TextSpanProgress) => void;
}

export interface TextSpanProgress {
  readonly stage: 'collect' | 'directions';
  readonly done: number;
  readonly total: number;
}

export interface HeadDirection {
  /** Row of the pool. */
  readonly index: number;
  /** The token ('unembed' pool), else null. */
  readonly id: number | null;
  readonly text: string;
  /** Share of the head's output variance this direction explains (after the earlier ones were removed). */
  readonly fraction: number;
}

export interface HeadDirections {
  readonly layer: number;
  readonly head: number;
  /** Singular directions the pool was projected onto. */
  readonly rank: number;
  /** Total variance of the head's centred outputs (read through the final norm). */
  readonly variance: number;
  readonly directions: readonly HeadDirection[];
  /** Sum of the directions' fractions. */
  readonly explained: number;
}

export interface TextSpanResult {
  readonly pool: PoolSpec['kind'];
  readonly steps: number;
  readonly rank: number;
  /** Positions the head outputs were collected over. */
  readonly tokens: number;
  readonly windows: number;
  readonly heads: readonly HeadDirections[];
  /** Whether this came from the cache. */
  readonly cached: boolean;
}

/** A cached result as read back: every field the views print, checked, so a damaged entry is recomputed. */
const textSpanCacheSchema = openObject({
  pool: literal('unembed', 'words'),
  steps: nonNegInt,
  rank: nonNegInt,
  tokens: nonNegInt,
  windows: nonNegInt,
  heads: arrayOf(
    openObject({
      layer: nonNegInt,
      head: nonNegInt,
      rank: nonNegInt,
      variance: num,
      explained: num,
      directions: arrayOf(
        openObject({ index: nonNegInt, id: nullable(nonNegInt), text: str, fraction: num }),
      ),
    }),
  ),
});

export async function headTextDirections(
  model: HookedModel,
  options: TextSpanOptions,
): Promise<TextSpanResult> {
  const spec = model.spec;
  const steps = options.steps ?? 10;
  const rank = options.rank ?? 80;
  const poolSpec = options.pool ?? { kind: 'unembed' };
  if (!Number.isInteger(steps) || steps <= 0)
    throw new LoupeError(`steps must be a positive integer, not ${steps}`);
  if (!Number.isInteger(rank) || rank <= 0)
    throw new LoupeError(`rank must be a positive integer, not ${rank}`);
  const windows = options.windows.filter((w) => w.length > 0);
  if (windows.length === 0) throw new LoupeError('TextSpan needs text: the corpus gave no tokens');

  const cacheFile = path.join(
    model.compiled.dir,
    'textspan',
    `${cacheKey(windows, poolSpec, steps, rank)}.json`,
  );
  const useCache = options.cache ?? true;
  if (useCache && isPresent(cacheFile)) {
    try {
      const hit = readJsonFile(cacheFile, JSON_KINDS.cache, textSpanCacheSchema);
      return { ...hit, cached: true };
    } catch (err) {
      // A damaged entry is recomputed below and written over.
      if (!(err instanceof LoupeError)) throw err;
    }
  }

  const moments = await collectHeadMoments(model, windows, {
    threads: options.threads,
    signal: options.signal,
    onProgress: (done, total) => options.onProgress?.({ stage: 'collect', done, total }),
  });
  if (moments.count < 2) throw new LoupeError('TextSpan needs at least two token positions besides BOS');
  const pool = await buildTextPool(model, poolSpec);
  const { nLayers: L, nHeads: H, dHead: dh, dModel: d } = spec;
  const heads: HeadDirections[] = [];
  const project = await projectionSession(model, options.threads ?? 0);
  try {
    for (let l = 0; l < L; l++) {
      const readout = headReadouts(model, l);
      const bases: HeadBasis[] = [];
      for (let h = 0; h < H; h++) {
        const m: HeadOutputMoments = {
          k: dh,
          d,
          second: moments.layers[l].second.subarray(h * dh * dh, (h + 1) * dh * dh),
          mean: moments.layers[l].mean.subarray(h * dh, (h + 1) * dh),
          readout: readout.subarray(h * dh * d, (h + 1) * dh * d),
        };
        bases.push(headBasis(m, rank));
      }
      const coords = await projectPool(project, pool, bases, d);
      for (let h = 0; h < H; h++) {
        if (options.signal?.aborted) throw new CancelledError();
        const chosen = greedyDirections(bases[h], coords[h], steps);
        const directions = await Promise.all(
          chosen.map(async (c) => ({
            index: c.index,
            id: pool.tokenId(c.index),
            text: await pool.label(c.index),
            fraction: c.fraction,
          })),
        );
        heads.push({
          layer: l,
          head: h,
          rank: bases[h].rank,
          variance: bases[h].totalVariance,
          directions,
          explained: directions.reduce((a, x) => a + x.fraction, 0),
        });
        options.onProgress?.({ stage: 'directions', done: l * H + h + 1, total: L * H });
      }
    }
  } finally {
    await project.release();
  }
  const result: TextSpanResult = {
    pool: poolSpec.kind,
    steps,
    rank,
    tokens: moments.count,
    windows: windows.length,
    heads,
    cached: false,
  };
  if (useCache) {
    try {
      writeFileAtomic(cacheFile, JSON.stringify(result));
    } catch {
      // The cache only saves time; failing to write it is harmless.
    }
  }
  return result;
}

/**
 * Windows of a corpus as TextSpan reads it: each document tokenized and cut
 * into windows of `contextSize` that start with BOS, up to `maxTokens` tokens.
 */
export async function corpusWindows(
  model: HookedModel,
  corpus: string,
  options: { readonly maxTokens?: number; readonly contextSize?: number; readonly signal?: AbortSignal } = {},
): Promise<number[][]> {
  const maxTokens = options.maxTokens ?? 100_000;
  const ctx = Math.min(options.contextSize ?? model.spec.nCtx, model.spec.nCtx);
  const bos = model.bosTokenId;
  const out: number[][] = [];
  let tokens = 0;
  for await (const doc of readCorpus(corpus)) {
    if (options.signal?.aborted) throw new CancelledError();
    const ids = (await model.tokenize(doc.text, { prependBos: false })).map((t) => t.id);
    for (const w of contextWindows(ids, bos, ctx)) {
      const window = w.slice(0, maxTokens - tokens);
      if (window.length === 0) return out;
      out.push(window);
      tokens += window.length;
    }
  }
  return out;
}

const heldoutSampleSchema = openObject({ items: arrayOf(openObject({ ids: arrayOf(nonNegInt) })) });

/**
 * The windows of a model folder's `heldout-sample.json` (the bundled default
 * model ships one: held-out files' first windows as token ids), or null when
 * the folder has none: the corpus TextSpan reads when the user names none.
 */
export function heldoutSampleWindows(modelDir: string): number[][] | null {
  const file = path.join(modelDir, 'heldout-sample.json');
  if (!fs.existsSync(file)) return null;
  const sample = readJsonFile(file, JSON_KINDS.heldoutSample, heldoutSampleSchema);
  return sample.items.map((item) => item.ids);
}

/**
 * Each head's output weights as the final norm reads them, [H × d_head × d]:
 * W_O's rows, centred for LayerNorm, and through the weight of the norm after
 * attention where the model has one (Gemma 2/3's ln1_post; its scale per
 * position is in the head moments, as the final norm's is).
 */
function headReadouts(model: HookedModel, layer: number): Float64Array {
  const { nHeads: H, dHead: dh, dModel: d } = model.spec;
  const W = Float64Array.from(readEngineWeight(model, `blocks.${layer}.attn.W_O`)); // [H·dh, d]
  if (model.spec.postNorms) {
    const post = readEngineWeight(model, `blocks.${layer}.ln1_post.w`);
    for (let r = 0; r < H * dh; r++) for (let j = 0; j < d; j++) W[r * d + j] *= post[j];
  }
  if (model.spec.norm === 'layernorm') {
    for (let r = 0; r < H * dh; r++) {
      let mean = 0;
      for (let j = 0; j < d; j++) mean += W[r * d + j];
      mean /= d;
      for (let j = 0; j < d; j++) W[r * d + j] -= mean;
    }
  }
  return W;
}

async function projectionSession(model: HookedModel, threads: number): Promise<GraphSession> {
  const g = new GraphBuilder('unused.bin');
  const pool = g.input('pool', 'float', ['rows', model.spec.dModel]);
  const basis = g.input('basis', 'float', [model.spec.dModel, 'cols']);
  g.op('MatMul', [pool, basis], {}, 'coords');
  g.output('coords');
  const file = path.join(model.compiled.dir, 'graph-lens-pool-projection.onnx');
  writeFileAtomic(file, g.encode('pool_projection'));
  return GraphSession.create(file, { threads });
}

/** The pool in each head's basis coordinates: one product [M × d] · [d × Σ rank] for all heads of a layer. */
async function projectPool(
  session: GraphSession,
  pool: TextPool,
  bases: readonly HeadBasis[],
  d: number,
): Promise<Float64Array[]> {
  const cols = bases.reduce((a, b) => a + b.rank, 0);
  const out = bases.map((b) => new Float64Array(pool.size * b.rank));
  if (cols === 0) return out;
  const basisT = new Float32Array(d * cols);
  let c0 = 0;
  for (const b of bases) {
    for (let i = 0; i < b.rank; i++)
      for (let j = 0; j < d; j++) basisT[j * cols + c0 + i] = b.basis[i * d + j];
    c0 += b.rank;
  }
  // About 64 MB of coordinates per run.
  const chunk = Math.max(1, Math.floor((1 << 24) / cols));
  for (let r0 = 0; r0 < pool.size; r0 += chunk) {
    const rows = Math.min(chunk, pool.size - r0);
    const res = await session.run(
      {
        pool: { type: 'float32', dims: [rows, d], data: pool.directions.subarray(r0 * d, (r0 + rows) * d) },
        basis: { type: 'float32', dims: [d, cols], data: basisT },
      },
      ['coords'],
    );
    const coords = res.get('coords')!.data;
    let offset = 0;
    bases.forEach((b, h) => {
      for (let t = 0; t < rows; t++) {
        for (let i = 0; i < b.rank; i++) out[h][(r0 + t) * b.rank + i] = coords[t * cols + offset + i];
      }
      offset += b.rank;
    });
  }
  return out;
}

function cacheKey(
  windows: readonly (readonly number[])[],
  pool: PoolSpec,
  steps: number,
  rank: number,
): string {
  const hash = crypto.createHash('sha256');
  hash.update(JSON.stringify({ version: CACHE_VERSION, pool, steps, rank }));
  for (const w of windows) {
    hash.update(Int32Array.from(w));
    hash.update('|');
  }
  return hash.digest('hex').slice(0, 32);
}
