/**
 * Where a transcoder reads and writes: an MLP's input and its output, as
 * TransformerLens names them. Every family's MLP reads `ln2.hook_normalized`
 * (LayerNorm's output after its weight and bias; for RMSNorm, before the
 * weight, which the MLP's input projection then follows) and writes
 * `hook_mlp_out`; in a parallel-residual model that norm reads
 * `hook_resid_pre` instead of `hook_resid_mid`, which changes nothing here.
 */
import { LoupeError } from '../errors';
import { HookedModel } from '../model';

/** circuit-tracer's per-block names (config.yaml's feature_input_hook / feature_output_hook). */
export const TRANSCODER_INPUT_HOOK = 'ln2.hook_normalized';
export const TRANSCODER_OUTPUT_HOOK = 'hook_mlp_out';

export interface TranscoderHooks {
  readonly layer: number;
  readonly input: string;
  readonly output: string;
}

export function transcoderHooks(layer: number): TranscoderHooks {
  return {
    layer,
    input: `blocks.${layer}.${TRANSCODER_INPUT_HOOK}`,
    output: `blocks.${layer}.${TRANSCODER_OUTPUT_HOOK}`,
  };
}

/** `--layer L|all|L,L`: the layers asked for, each one the model has, in order. */
export function parseTranscoderLayers(value: string, model: HookedModel, flag = '--layer'): number[] {
  const n = model.spec.nLayers;
  if (value === 'all') return Array.from({ length: n }, (_, i) => i);
  const layers = value.split(',').map((part) => {
    const v = part.trim();
    if (!/^\d+$/.test(v))
      throw new LoupeError(`${flag} takes a layer number, a list (0,2) or 'all', not '${value}'`);
    const layer = Number(v);
    if (layer >= n) {
      throw new LoupeError(
        `${flag} ${layer}: model ${model.checkpoint.dir} has ${n} layer${n === 1 ? '' : 's'} (0..${n - 1})`,
      );
    }
    return layer;
  });
  const unique = [...new Set(layers)].sort((a, b) => a - b);
  if (unique.length !== layers.length) throw new LoupeError(`${flag} '${value}' names a layer twice`);
  return unique;
}
