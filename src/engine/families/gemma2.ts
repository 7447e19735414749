/**
 * Gemma 2 (`model_type: gemma2`): Gemma with RMSNorms before and after both
 * attention and the MLP (Hugging Face's `input_layernorm`,
 * `post_attention_layernorm`, `pre_feedforward_layernorm`,
 * `post_feedforward_layernorm`: note that `post_attention_layernorm` is the
 * norm *after* attention here, TransformerLens's ln1_post, not the MLP's input
 * norm as in Llama), soft-capped attention scores and final logits
 * (cap · tanh(x / cap)), attention scaled by `query_pre_attn_scalar`^-0.5, and
 * a sliding window on alternating layers (layer 0 slides, layer 1 is global, ...).
 *
 * Config fields that change the computation: those of `gemmaSpec`, and
 * `query_pre_attn_scalar`, `attn_logit_softcapping`, `final_logit_softcapping`
 * (null: no cap; absent: Hugging Face's 50 and 30), `sliding_window`,
 * `layer_types`.
 */
import { gemmaSpec } from './gemma';
import { llamaLayoutRecipes, perLayer, slidingLayers } from './layout';
import { ConfigReader, FamilyDefinition, ModelSpec } from './spec';

export const GEMMA_NORMS = {
  ln1: 'input_layernorm',
  ln1Post: 'post_attention_layernorm',
  ln2: 'pre_feedforward_layernorm',
  ln2Post: 'post_feedforward_layernorm',
  plusOne: true,
} as const;

export const gemma2: FamilyDefinition = {
  modelTypes: ['gemma2'],
  layersKey: 'num_hidden_layers',

  parseConfig(config, file): ModelSpec {
    const c = new ConfigReader(config, file);
    const base = gemmaSpec(c, 'gemma2');
    const scale = Math.pow(c.positive('query_pre_attn_scalar', 256), -0.5);
    const window = c.optionalIntOr('sliding_window', 4096);
    return {
      ...base,
      postNorms: true,
      attnScale: perLayer(base.nLayers, () => scale),
      attnSoftcap: c.optionalPositive('attn_logit_softcapping', 50),
      finalSoftcap: c.optionalPositive('final_logit_softcapping', 30),
      slidingWindow: slidingLayers(c, base.nLayers, (l) => l % 2 === 0).map((sliding) =>
        sliding ? window : null,
      ),
    };
  },

  weightRecipes(spec, names) {
    return llamaLayoutRecipes(spec, names, GEMMA_NORMS);
  },
};
