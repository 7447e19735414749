/**
 * One pass over token windows that keeps, for every attention head, the
 * first and second moments of its z read through the final norm's cached
 * scale (ẑ = hook_z / ln_final.hook_scale at the same position, and / the
 * scale of the norm after attention where the model has one): all that
 * TextSpan needs about the head's outputs (hook_result = z·W_O; see
 * textSpan.ts). Positions 0 of windows that start with BOS are left out (the
 * attention sink's outputs say nothing about the text), as is padding.
 *
 * The sums run in onnxruntime per layer (a batched [H, d_head, rows] ×
 * [H, rows, d_head] product) and accumulate in float64 across batches.
 */
import * as path from 'node:path';
import { CancelledError } from '../errors';
import { GraphBuilder } from '../graph/builder';
import { HookedModel } from '../model';
import { GraphSession } from '../runtime';
import { writeFileAtomic } from '../safeWrite';

export interface LayerMoments {
  /** Σ ẑẑᵀ / N per head, [H × d_head × d_head]. */
  readonly second: Float64Array;
  /** Σ ẑ / N per head, [H × d_head]. */
  readonly mean: Float64Array;
}

export interface HeadMoments {
  /** Positions the moments average over. */
  readonly count: number;
  readonly layers: readonly LayerMoments[];
}

export interface MomentsOptions {
  readonly threads?: number;
  /** Tokens per forward pass (windows are batched up to this). */
  readonly batchTokens?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (windowsDone: number, windows: number) => void;
}

export async function collectHeadMoments(
  model: HookedModel,
  windows: readonly (readonly number[])[],
  options: MomentsOptions = {},
): Promise<HeadMoments> {
  const { nLayers: L, nHeads: H, dHead: dh } = model.spec;
  const bos = model.bosTokenId;
  const hooks = [...Array.from({ length: L }, (_, l) => `blocks.${l}.attn.hook_z`), 'ln_final.hook_scale'];
  // Gemma 2/3 normalise attention's output again before the stream: z is read through that scale too.
  const postScale = (l: number): string => `blocks.${l}.ln1_post.hook_scale`;
  if (model.spec.postNorms) for (let l = 0; l < L; l++) hooks.push(postScale(l));
  const sumSecond = Array.from({ length: L }, () => new Float64Array(H * dh * dh));
  const sumFirst = Array.from({ length: L }, () => new Float64Array(H * dh));
  let count = 0;
  const session = await momentsSession(model, options.threads ?? 0);
  const budget = options.batchTokens ?? 4096;
  try {
    let start = 0;
    while (start < windows.length) {
      if (options.signal?.aborted) throw new CancelledError();
      let end = start;
      let tokens = 0;
      while (end < windows.length && (end === start || tokens + windows[end].length <= budget)) {
        tokens += windows[end].length;
        end++;
      }
      const batch = windows.slice(start, end);
      const padded = await model.runHooksPadded(batch, hooks);
      const scale = padded.hooks.get('ln_final.hook_scale')!;
      const T = scale.dims[1];
      const weight = new Float32Array(batch.length * T);
      batch.forEach((ids, b) => {
        const first = bos !== null && ids[0] === bos ? 1 : 0;
        for (let t = first; t < ids.length; t++) weight[b * T + t] = 1 / scale.data[b * T + t];
        count += ids.length - first;
      });
      for (let l = 0; l < L; l++) {
        const z = padded.hooks.get(`blocks.${l}.attn.hook_z`)!;
        const post = model.spec.postNorms ? padded.hooks.get(postScale(l))!.data : null;
        const layerWeight = post ? weight.map((w, i) => w / post[i]) : weight;
        const res = await session.run(
          {
            z: { type: 'float32', dims: z.dims, data: z.data },
            weight: { type: 'float32', dims: [batch.length, T], data: layerWeight },
          },
          ['second', 'first'],
        );
        const second = res.get('second')!.data;
        const first = res.get('first')!.data;
        for (let i = 0; i < second.length; i++) sumSecond[l][i] += second[i];
        for (let i = 0; i < first.length; i++) sumFirst[l][i] += first[i];
      }
      start = end;
      options.onProgress?.(start, windows.length);
    }
  } finally {
    await session.release();
  }
  const n = Math.max(1, count);
  return {
    count,
    layers: sumSecond.map((s, l) => ({ second: s.map((v) => v / n), mean: sumFirst[l].map((v) => v / n) })),
  };
}

async function momentsSession(model: HookedModel, threads: number): Promise<GraphSession> {
  const { nHeads: H, dHead: dh } = model.spec;
  const g = new GraphBuilder('unused.bin');
  const z = g.input('z', 'float', ['batch', 'pos', H, dh]);
  const weight = g.input('weight', 'float', ['batch', 'pos']);
  // Rows with weight 0 (BOS, padding) drop out; the rest become z / scale.
  const y = g.op('Mul', [z, g.op('Unsqueeze', [weight, g.constI64([2, 3])])]);
  const byHead = g.op('Transpose', [g.op('Reshape', [y, g.constI64([-1, H, dh])])], { perm: [1, 0, 2] }); // [H, rows, dh]
  g.op('MatMul', [g.op('Transpose', [byHead], { perm: [0, 2, 1] }), byHead], {}, 'second');
  g.op('ReduceSum', [byHead, g.constI64([1])], { keepdims: 0 }, 'first');
  g.output('second');
  g.output('first');
  const file = path.join(model.compiled.dir, `graph-lens-head-moments.onnx`);
  writeFileAtomic(file, g.encode('head_moments'));
  return GraphSession.create(file, { threads });
}
