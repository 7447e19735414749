/**
 * Qwen3 (`model_type: qwen3`): the Llama layout with an explicit `head_dim`,
 * no q/k/v biases (unless `attention_bias`), and a per-head RMSNorm of queries
 * and keys (`self_attn.q_norm`, `self_attn.k_norm`, plain weight w) before
 * rotary embeddings.
 *
 * Config fields that change the computation: those of `llamaLikeSpec`, and
 * `use_sliding_window`, `sliding_window`, `max_window_layers`, `layer_types`
 * as for Qwen2.
 */
import { llamaLikeSpec, qwenWindows } from './llama';
import { llamaLayoutRecipes } from './layout';
import { ConfigReader, FamilyDefinition, ModelSpec } from './spec';

export const qwen3: FamilyDefinition = {
  modelTypes: ['qwen3'],
  layersKey: 'num_hidden_layers',

  parseConfig(config, file): ModelSpec {
    const c = new ConfigReader(config, file);
    const base = llamaLikeSpec(c, 'qwen3');
    return { ...base, qkNorm: true, slidingWindow: qwenWindows(c, base.nLayers) };
  },

  weightRecipes(spec, names) {
    return llamaLayoutRecipes(spec, names, {
      ln1: 'input_layernorm',
      ln2: 'post_attention_layernorm',
      plusOne: false,
    });
  },
};
