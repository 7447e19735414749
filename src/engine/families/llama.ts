/**
 * Llama-style models (`model_type` llama, qwen2; SmolLM is llama): RMSNorm,
 * rotary embeddings over whole heads with `rope_theta` (and Llama 3.x's
 * `rope_scaling`), a SwiGLU MLP (silu(gate) · up), grouped-query attention,
 * and an `lm_head` that is its own tensor unless `tie_word_embeddings`.
 * Linear weights are [out, in] and are transposed here; Qwen2 adds biases to
 * q, k and v. Mistral, Qwen3 and Phi-3 start from `llamaLikeSpec` too.
 *
 * Config fields that change the computation (all read): `hidden_size`,
 * `num_attention_heads`, `num_key_value_heads`, `head_dim`,
 * `num_hidden_layers`, `intermediate_size`, `vocab_size`,
 * `max_position_embeddings`, `rms_norm_eps`, `hidden_act`, `rope_theta`,
 * `rope_scaling` (`linear`, `llama3`; others refused by name; `rope_parameters`
 * refused),
 * `attention_bias`, `mlp_bias`, `tie_word_embeddings`; Qwen2's
 * `use_sliding_window`, `sliding_window`, `max_window_layers`, `layer_types`
 * (the window on layers from `max_window_layers` on, as Hugging Face places
 * it). `partial_rotary_factor` other than 1 is refused (only Phi-3 reads it);
 * `pretraining_tp` > 1 only splits matmuls in training code; dropouts do not
 * matter at inference.
 */
import { llamaLayoutRecipes, perLayer, readSizes, slidingLayers } from './layout';
import { readRopeScaling } from './rope';
import { ConfigReader, Family, FamilyDefinition, ModelSpec } from './spec';

/** Hugging Face's defaults for sizes a family's configs may leave out (Gemma's head_dim, Gemma 3's vocabulary). */
export interface SizeDefaults {
  readonly headDim?: number;
  readonly vocab?: number;
  readonly positions?: number;
}

/** The spec every Llama-layout config shares; a family spreads it and sets what it adds. */
export function llamaLikeSpec(c: ConfigReader, family: Family, defaults: SizeDefaults = {}): ModelSpec {
  const s = readSizes(c, {
    headDimDefault: defaults.headDim,
    vocabDefault: defaults.vocab,
    hidden: 'hidden_size',
    heads: 'num_attention_heads',
    kvHeads: 'num_key_value_heads',
    headDim: 'head_dim',
    layers: 'num_hidden_layers',
    mlp: 'intermediate_size',
    positions: 'max_position_embeddings',
    positionsDefault: defaults.positions ?? 2048,
  });
  // transformers 5 saves rotary settings as rope_parameters; read as absent, rope_theta would fall back to 10000.
  c.refuse('rope_parameters', 'is not read; give rope_theta and rope_scaling as transformers 4 saves them');
  const rope = { base: c.positive('rope_theta', 10000), scaling: readRopeScaling(c) };
  if (family !== 'phi3') {
    c.refuse(
      'partial_rotary_factor',
      `would turn part of each head only, which a ${family} model does not`,
      1,
    );
  }
  const attentionBias = c.bool('attention_bias', false);
  return {
    family,
    modelType: c.str('model_type', family),
    ...s,
    norm: 'rmsnorm',
    normEps: c.positive('rms_norm_eps', 1e-6),
    act: c.activation('hidden_act', 'silu'),
    positional: 'rotary',
    rotaryDims: s.dHead,
    rope: perLayer(s.nLayers, () => rope),
    parallelResidual: false,
    gatedMlp: true,
    attnScale: perLayer(s.nLayers, () => 1 / Math.sqrt(s.dHead)),
    slidingWindow: perLayer(s.nLayers, () => null),
    attnSoftcap: null,
    finalSoftcap: null,
    embedScale: null,
    postNorms: false,
    qkNorm: false,
    bias: { qkv: attentionBias, o: attentionBias, mlp: c.bool('mlp_bias', false), unembed: false },
    bosTokenId: c.optionalTokenId('bos_token_id'),
    tiedEmbeddings: c.bool('tie_word_embeddings', false),
  };
}

/**
 * Qwen2/Qwen3's windows: none unless `use_sliding_window`; then
 * `sliding_window` on the layers `layer_types` marks sliding, by default those
 * from `max_window_layers` on. Real Qwen2.5 configs set `sliding_window` with
 * `use_sliding_window: false`, which is no window.
 */
export function qwenWindows(c: ConfigReader, nLayers: number): (number | null)[] {
  if (!c.bool('use_sliding_window', false)) return perLayer(nLayers, () => null);
  const window = c.int('sliding_window', 4096);
  const from = c.int('max_window_layers', 28);
  return slidingLayers(c, nLayers, (l) => l >= from).map((sliding) => (sliding ? window : null));
}

export const llama: FamilyDefinition = {
  modelTypes: ['llama', 'qwen2'],
  layersKey: 'num_hidden_layers',

  parseConfig(config, file): ModelSpec {
    const c = new ConfigReader(config, file);
    const base = llamaLikeSpec(c, 'llama');
    if (base.modelType !== 'qwen2') return base;
    // Qwen2 always has q, k and v biases (and none on o_proj).
    return {
      ...base,
      slidingWindow: qwenWindows(c, base.nLayers),
      bias: { ...base.bias, qkv: true, o: false },
    };
  },

  weightRecipes(spec, names) {
    return llamaLayoutRecipes(spec, names, {
      ln1: 'input_layernorm',
      ln2: 'post_attention_layernorm',
      plusOne: false,
    });
  },
};
