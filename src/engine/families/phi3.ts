/**
 * Phi-3 (`model_type: phi3`): the Llama recipe with fused projections:
 * `self_attn.qkv_proj` holds the rows [q; k; v] and `mlp.gate_up_proj` the
 * rows [gate; up], each split here into the engine's weights; `sliding_window`
 * on every layer (2047 in Phi-3-mini); rotary over the first
 * `partial_rotary_factor` of each head (1 in Phi-3).
 *
 * Config fields that change the computation: those of `llamaLikeSpec`, and
 * `sliding_window`, `partial_rotary_factor`; `rope_scaling` of type
 * `longrope`, `su` or `yarn` (the 128k variants) is refused by name, as are
 * other types the engine does not run.
 */
import { LoupeError } from '../errors';
import { llamaLikeSpec } from './llama';
import { Recipes, perLayer } from './layout';
import { ConfigReader, FamilyDefinition, ModelSpec } from './spec';

export const phi3: FamilyDefinition = {
  modelTypes: ['phi3'],
  layersKey: 'num_hidden_layers',

  parseConfig(config, file): ModelSpec {
    const c = new ConfigReader(config, file);
    const base = llamaLikeSpec(c, 'phi3');
    const rotaryDims = Math.floor(base.dHead * c.fraction('partial_rotary_factor', 1));
    if (rotaryDims < 2 || rotaryDims % 2 !== 0) {
      throw new LoupeError(
        `${file}: 'partial_rotary_factor' turns ${rotaryDims} of each head's ${base.dHead} dimensions; rotary needs an even number, at least 2`,
      );
    }
    const window = c.optionalInt('sliding_window');
    // Phi-3's projections have no biases, whatever attention_bias says.
    const bias = { qkv: false, o: false, mlp: false, unembed: false };
    return { ...base, rotaryDims, bias, slidingWindow: perLayer(base.nLayers, () => window) };
  },

  weightRecipes(spec, names) {
    const d = spec.dModel;
    const qDim = spec.nHeads * spec.dHead;
    const kvDim = spec.nKvHeads * spec.dHead;
    const m = new Recipes();
    for (let l = 0; l < spec.nLayers; l++) {
      const b = `blocks.${l}.`;
      const h = `model.layers.${l}.`;
      m.direct(`${b}ln1.w`, `${h}input_layernorm.weight`, [d]);
      // [q; k; v] rows are the engine's W_QKV columns in the same order.
      m.linear(`${b}attn.W_QKV`, `${h}self_attn.qkv_proj.weight`, qDim + 2 * kvDim, d);
      m.linear(`${b}attn.W_O`, `${h}self_attn.o_proj.weight`, d, qDim);
      m.direct(`${b}ln2.w`, `${h}post_attention_layernorm.weight`, [d]);
      const gateUp = `${h}mlp.gate_up_proj.weight`;
      m.linearRows(`${b}mlp.W_gate`, gateUp, [2 * spec.dMlp, d], 0, spec.dMlp);
      m.linearRows(`${b}mlp.W_in`, gateUp, [2 * spec.dMlp, d], spec.dMlp, 2 * spec.dMlp);
      m.linear(`${b}mlp.W_out`, `${h}mlp.down_proj.weight`, d, spec.dMlp);
    }
    m.direct('W_E', 'model.embed_tokens.weight', [spec.dVocab, d]);
    m.direct('ln_final.w', 'model.norm.weight', [d]);
    if (names.has('lm_head.weight') || !spec.tiedEmbeddings)
      m.direct('W_U_T', 'lm_head.weight', [spec.dVocab, d]);
    return m;
  },
};
