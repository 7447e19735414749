/**
 * Mistral (`model_type: mistral`): the Llama layout with `sliding_window` on
 * every layer (null in the later releases: full causal attention), where a
 * window of W lets each token see W keys including itself.
 *
 * Config fields that change the computation: those of `llamaLikeSpec`
 * (`head_dim` included, as Mistral-Nemo gives it) and `sliding_window`.
 */
import { llamaLikeSpec } from './llama';
import { llamaLayoutRecipes, perLayer } from './layout';
import { ConfigReader, FamilyDefinition, ModelSpec } from './spec';

export const mistral: FamilyDefinition = {
  modelTypes: ['mistral'],
  layersKey: 'num_hidden_layers',

  parseConfig(config, file): ModelSpec {
    const c = new ConfigReader(config, file);
    const base = llamaLikeSpec(c, 'mistral');
    const window = c.optionalInt('sliding_window');
    return { ...base, slidingWindow: perLayer(base.nLayers, () => window) };
  },

  weightRecipes(spec, names) {
    return llamaLayoutRecipes(spec, names, {
      ln1: 'input_layernorm',
      ln2: 'post_attention_layernorm',
      plusOne: false,
    });
  },
};
