/**
 * Gemma 3's text model (`model_type: gemma3_text`, the 270M and 1B
 * checkpoints): Gemma 2's four norms, scaling and final soft-cap, plus a per-head
 * RMSNorm (1 + w) of queries and keys before rotary (`self_attn.q_norm`,
 * `k_norm`), and `layer_types` of local (sliding) and global layers, five
 * local to one global by default. Local layers turn with
 * `rope_local_base_freq` and no scaling; global ones with `rope_theta` and
 * `rope_scaling` (linear in the 4B and larger models).
 *
 * The multimodal checkpoints (`model_type: gemma3`, 4B and up) hold the same
 * text model under `text_config`, its tensors under `language_model.model.`
 * (or `model.language_model.` in later saves); Loupe runs that text model and
 * leaves the vision tower's tensors unread. Their text_config leaves out what
 * Hugging Face's Gemma3TextConfig defaults (vocabulary 262,208, context 131,072).
 *
 * Config fields that change the computation: those of Gemma 2 but
 * `attn_logit_softcapping`, which Hugging Face's Gemma 3 attention never
 * applies (`final_logit_softcapping` absent means none here),
 * `rope_local_base_freq`, `rope_scaling` (global layers only),
 * `sliding_window_pattern` (where `layer_types` is absent);
 * `use_bidirectional_attention` (refused: an encoder's attention);
 * `rope_parameters` is refused as for every Llama-layout family.
 */
import { LoupeError } from '../errors';
import { gemmaSpec } from './gemma';
import { GEMMA_NORMS } from './gemma2';
import { LlamaKeys, llamaLayoutRecipes, perLayer, slidingLayers } from './layout';
import { readRopeScaling } from './rope';
import { ConfigReader, FamilyDefinition, ModelSpec, RopeSpec } from './spec';

/** Gemma 3's text model from its config (the whole config.json, or a multimodal one's text_config). */
function gemma3TextSpec(c: ConfigReader, modelType: string): ModelSpec {
  c.refuse(
    'use_bidirectional_attention',
    'makes attention bidirectional; Loupe runs causal language models',
    false,
  );
  const base = gemmaSpec(c, 'gemma3_text', { vocab: 262208, positions: 131072 });
  const n = base.nLayers;
  const scale = Math.pow(c.positive('query_pre_attn_scalar', 256), -0.5);
  const window = c.optionalIntOr('sliding_window', 4096);
  const pattern = c.int(
    c.has('sliding_window_pattern') ? 'sliding_window_pattern' : '_sliding_window_pattern',
    6,
  );
  const sliding = slidingLayers(c, n, (l) => (l + 1) % pattern !== 0);
  const local: RopeSpec = { base: c.positive('rope_local_base_freq', 10000), scaling: { type: 'default' } };
  const global: RopeSpec = { base: c.positive('rope_theta', 1000000), scaling: readRopeScaling(c) };
  return {
    ...base,
    modelType,
    postNorms: true,
    qkNorm: true,
    attnScale: perLayer(n, () => scale),
    // Hugging Face's Gemma 3 keeps attn_logit_softcapping in its config but its attention never applies it.
    attnSoftcap: null,
    finalSoftcap: c.optionalPositive('final_logit_softcapping'),
    slidingWindow: sliding.map((s) => (s ? window : null)),
    // A sliding layer turns with the local base even where sliding_window is null, as in Hugging Face.
    rope: sliding.map((s) => (s ? local : global)),
  };
}

export const gemma3: FamilyDefinition = {
  modelTypes: ['gemma3_text'],
  layersKey: 'num_hidden_layers',

  parseConfig(config, file): ModelSpec {
    return gemma3TextSpec(new ConfigReader(config, file), 'gemma3_text');
  },

  weightRecipes(spec, names) {
    return llamaLayoutRecipes(spec, names, GEMMA_NORMS);
  },
};

export const gemma3Multimodal: FamilyDefinition = {
  modelTypes: ['gemma3'],
  layersKey: 'text_config.num_hidden_layers',

  parseConfig(config, file): ModelSpec {
    const text = new ConfigReader(config, file).optionalObject('text_config');
    if (!text) {
      throw new LoupeError(`${file}: 'text_config' is missing; a gemma3 config holds its text model there`);
    }
    return gemma3TextSpec(text, 'gemma3');
  },

  weightRecipes(spec, names) {
    // Saves before transformers 4.52 nest the text model as language_model.model.*, later ones as model.language_model.*.
    const keys: LlamaKeys = names.has('model.language_model.embed_tokens.weight')
      ? { model: 'model.language_model.', lmHead: 'lm_head.weight' }
      : { model: 'language_model.model.', lmHead: 'language_model.lm_head.weight' };
    return llamaLayoutRecipes(spec, names, GEMMA_NORMS, keys);
  },
};
