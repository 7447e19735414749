/**
 * GPT-2 (`model_type: gpt2`). Conv1D weights are stored [in, out], already the
 * `x @ W` layout. Two key layouts exist: `transformer.h.0...` (saves by
 * `transformers`) and `h.0...` (the original `gpt2` upload). The unembedding
 * is always tied to `wte`.
 *
 * Config fields that change the computation: `n_embd`, `n_head`, `n_layer`,
 * `n_inner`, `n_positions`, `vocab_size`, `layer_norm_epsilon`,
 * `activation_function`, `scale_attn_weights`, `scale_attn_by_inverse_layer_idx`
 * (all read); `add_cross_attention` (refused: Loupe runs decoder-only models).
 * Dropouts do not matter at inference; `reorder_and_upcast_attn` only changes
 * half-precision rounding, and the engine computes in f32.
 */
import { Recipes, perLayer, readSizes } from './layout';
import { CONFIG_LIMITS, ConfigReader, FamilyDefinition, ModelSpec } from './spec';

export const gpt2: FamilyDefinition = {
  modelTypes: ['gpt2'],
  layersKey: 'n_layer',

  parseConfig(config, file): ModelSpec {
    const c = new ConfigReader(config, file);
    const s = readSizes(c, {
      hidden: 'n_embd',
      heads: 'n_head',
      kvHeads: null,
      headDim: null,
      layers: 'n_layer',
      mlp: 'n_inner',
      mlpDefault: 4 * c.int('n_embd', 1),
      positions: 'n_positions',
      positionsDefault: c.int('n_ctx', 1024, CONFIG_LIMITS.positions),
    });
    c.refuse('add_cross_attention', 'adds cross-attention; Loupe runs decoder-only models', false);
    const base = c.bool('scale_attn_weights', true) ? 1 / Math.sqrt(s.dHead) : 1;
    const byLayer = c.bool('scale_attn_by_inverse_layer_idx', false);
    return {
      family: 'gpt2',
      modelType: 'gpt2',
      ...s,
      norm: 'layernorm',
      normEps: c.positive('layer_norm_epsilon', 1e-5),
      act: c.activation('activation_function', 'gelu_new'),
      positional: 'learned',
      rotaryDims: 0,
      rope: [],
      parallelResidual: false,
      gatedMlp: false,
      attnScale: perLayer(s.nLayers, (l) => (byLayer ? base / (l + 1) : base)),
      slidingWindow: perLayer(s.nLayers, () => null),
      attnSoftcap: null,
      finalSoftcap: null,
      embedScale: null,
      postNorms: false,
      qkNorm: false,
      bias: { qkv: true, o: true, mlp: true, unembed: false },
      bosTokenId: c.optionalTokenId('bos_token_id'),
      tiedEmbeddings: true,
    };
  },

  weightRecipes(spec, names) {
    const p = names.has('transformer.wte.weight') ? 'transformer.' : '';
    const d = spec.dModel;
    const m = new Recipes();
    const direct = (engine: string, hf: string, shape: number[]): void => m.direct(engine, p + hf, shape);
    direct('W_E', 'wte.weight', [spec.dVocab, d]);
    direct('W_pos', 'wpe.weight', [spec.nCtx, d]);
    for (let l = 0; l < spec.nLayers; l++) {
      const b = `blocks.${l}.`;
      const h = `h.${l}.`;
      direct(`${b}ln1.w`, `${h}ln_1.weight`, [d]);
      direct(`${b}ln1.b`, `${h}ln_1.bias`, [d]);
      direct(`${b}attn.W_QKV`, `${h}attn.c_attn.weight`, [d, 3 * d]);
      direct(`${b}attn.b_QKV`, `${h}attn.c_attn.bias`, [3 * d]);
      direct(`${b}attn.W_O`, `${h}attn.c_proj.weight`, [d, d]);
      direct(`${b}attn.b_O`, `${h}attn.c_proj.bias`, [d]);
      direct(`${b}ln2.w`, `${h}ln_2.weight`, [d]);
      direct(`${b}ln2.b`, `${h}ln_2.bias`, [d]);
      direct(`${b}mlp.W_in`, `${h}mlp.c_fc.weight`, [d, spec.dMlp]);
      direct(`${b}mlp.b_in`, `${h}mlp.c_fc.bias`, [spec.dMlp]);
      direct(`${b}mlp.W_out`, `${h}mlp.c_proj.weight`, [spec.dMlp, d]);
      direct(`${b}mlp.b_out`, `${h}mlp.c_proj.bias`, [d]);
    }
    direct('ln_final.w', 'ln_f.weight', [d]);
    direct('ln_final.b', 'ln_f.bias', [d]);
    return m;
  },
};
