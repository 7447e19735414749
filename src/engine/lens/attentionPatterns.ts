/** Attention patterns of a text, per layer and head, as the model computes them (`blocks.L.attn.hook_pattern`). */
import { HookedModel } from '../model';
import { checkBlock, checkHead, tokenPositions } from './positions';

export interface LayerPatterns {
  readonly layer: number;
  readonly heads: number;
  readonly tokens: number;
  /** [heads × tokens(query) × tokens(key)], each query row summing to 1 over keys 0..query. */
  readonly pattern: Float32Array;
}

export async function attentionPatterns(
  model: HookedModel,
  ids: readonly number[],
  layers?: readonly number[],
): Promise<LayerPatterns[]> {
  const spec = model.spec;
  const wanted = layers
    ? layers.map((l) => checkBlock(spec, l))
    : Array.from({ length: spec.nLayers }, (_, l) => l);
  const hooks = wanted.map((l) => `blocks.${l}.attn.hook_pattern`);
  const { hooks: values } = await model.runHooksPadded([ids], hooks);
  return wanted.map((layer, i) => ({
    layer,
    heads: spec.nHeads,
    tokens: ids.length,
    pattern: values.get(hooks[i])!.data,
  }));
}

export interface AttentionWeight {
  readonly position: number;
  readonly weight: number;
}

/** One head's attention from the query at `position` to every earlier token (key order). */
export function attentionRow(patterns: LayerPatterns, head: number, position: number): AttentionWeight[] {
  const T = patterns.tokens;
  checkHead(patterns.heads, head);
  tokenPositions(T, [position]);
  const row = patterns.pattern.subarray((head * T + position) * T, (head * T + position + 1) * T);
  return Array.from({ length: position + 1 }, (_, k) => ({ position: k, weight: row[k] }));
}
