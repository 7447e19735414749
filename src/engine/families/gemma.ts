/**
 * Gemma (`model_type: gemma`): the Llama layout with RMSNorm applied as
 * (1 + w) in f32 (the 1 is added to the weights at compile time), a GeGLU MLP
 * (tanh-approximated GELU of the gate, times up), token embeddings multiplied
 * by √d_model rounded to f32 (as Hugging Face casts it to the dtype it runs
 * in), an explicit `head_dim`, and the unembedding tied to the embedding.
 * Gemma 2 and Gemma 3 start from `gemmaSpec`.
 *
 * Config fields that change the computation: those of `llamaLikeSpec`, with
 * `hidden_activation` (default `gelu_pytorch_tanh`; Hugging Face ignores
 * `hidden_act` here) and `head_dim` defaulting to 256.
 */
import { SizeDefaults, llamaLikeSpec } from './llama';
import { llamaLayoutRecipes } from './layout';
import { ConfigReader, Family, FamilyDefinition, ModelSpec } from './spec';

export function gemmaSpec(c: ConfigReader, family: Family, defaults: SizeDefaults = {}): ModelSpec {
  const base = llamaLikeSpec(c, family, { headDim: 256, ...defaults });
  return {
    ...base,
    act: c.activation('hidden_activation', 'gelu_pytorch_tanh'),
    embedScale: Math.fround(Math.sqrt(base.dModel)),
    tiedEmbeddings: c.bool('tie_word_embeddings', true),
  };
}

export const gemma: FamilyDefinition = {
  modelTypes: ['gemma'],
  layersKey: 'num_hidden_layers',

  parseConfig(config, file): ModelSpec {
    return gemmaSpec(new ConfigReader(config, file), 'gemma');
  },

  weightRecipes(spec, names) {
    return llamaLayoutRecipes(spec, names, {
      ln1: 'input_layernorm',
      ln2: 'post_attention_layernorm',
      plusOne: true,
    });
  },
};
