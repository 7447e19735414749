/**
 * GPT-NeoX / Pythia (`model_type: gpt_neox`). Linear weights are stored
 * [out, in] and transposed here; the fused `query_key_value` output is laid out
 * per head as [head, (q | k | v), d_head], regrouped into all q, then k, then v.
 * Rotary embeddings turn the first `rotary_pct` of each head's dimensions.
 *
 * Config fields that change the computation: `hidden_size`,
 * `num_attention_heads`, `num_hidden_layers`, `intermediate_size`,
 * `vocab_size`, `max_position_embeddings`, `layer_norm_eps`, `hidden_act`,
 * `rotary_pct` (or `partial_rotary_factor`), `rotary_emb_base` (or
 * `rope_theta`), `use_parallel_residual`, `attention_bias`,
 * `tie_word_embeddings` (all read); `rope_scaling` (refused: GPT-NeoX
 * checkpoints run plain rotary embeddings here) and `rope_parameters` (refused:
 * transformers 5's form of the rotary settings). Dropouts do not matter at
 * inference.
 */
import { LoupeError } from '../errors';
import { Recipes, perLayer, readSizes } from './layout';
import { ConfigReader, FamilyDefinition, HostTensor, ModelSpec, transpose2d } from './spec';

export const neox: FamilyDefinition = {
  modelTypes: ['gpt_neox'],
  layersKey: 'num_hidden_layers',

  parseConfig(config, file): ModelSpec {
    const c = new ConfigReader(config, file);
    const s = readSizes(c, {
      hidden: 'hidden_size',
      heads: 'num_attention_heads',
      kvHeads: null,
      headDim: null,
      layers: 'num_hidden_layers',
      mlp: 'intermediate_size',
      mlpDefault: 4 * c.int('hidden_size', 1),
      positions: 'max_position_embeddings',
      positionsDefault: 2048,
    });
    c.refuse('rope_scaling', 'rescales rotary embeddings; Loupe runs GPT-NeoX with plain rotary embeddings');
    c.refuse(
      'rope_parameters',
      'is not read; give rotary_emb_base (or rope_theta) as transformers 4 saves it',
    );
    const pctKey = c.has('rotary_pct') ? 'rotary_pct' : 'partial_rotary_factor';
    const rotaryDims = Math.floor(s.dHead * c.fraction(pctKey, 0.25));
    if (rotaryDims < 2 || rotaryDims % 2 !== 0) {
      throw new LoupeError(
        `${file}: '${pctKey}' turns ${rotaryDims} of each head's ${s.dHead} dimensions; rotary needs an even number, at least 2`,
      );
    }
    const base = c.has('rotary_emb_base') ? c.positive('rotary_emb_base') : c.positive('rope_theta', 10000);
    const attentionBias = c.bool('attention_bias', true);
    return {
      family: 'gpt_neox',
      modelType: 'gpt_neox',
      ...s,
      norm: 'layernorm',
      normEps: c.positive('layer_norm_eps', 1e-5),
      act: c.activation('hidden_act', 'gelu'),
      positional: 'rotary',
      rotaryDims,
      rope: perLayer(s.nLayers, () => ({ base, scaling: { type: 'default' } })),
      parallelResidual: c.bool('use_parallel_residual', true),
      gatedMlp: false,
      attnScale: perLayer(s.nLayers, () => 1 / Math.sqrt(s.dHead)),
      slidingWindow: perLayer(s.nLayers, () => null),
      attnSoftcap: null,
      finalSoftcap: null,
      embedScale: null,
      postNorms: false,
      qkNorm: false,
      bias: { qkv: attentionBias, o: attentionBias, mlp: true, unembed: false },
      bosTokenId: c.optionalTokenId('bos_token_id'),
      tiedEmbeddings: c.bool('tie_word_embeddings', false),
    };
  },

  weightRecipes(spec, names) {
    const d = spec.dModel;
    const H = spec.nHeads;
    const dh = spec.dHead;
    const m = new Recipes();
    // Row order [head][q|k|v][d_head] → [q|k|v][head][d_head].
    const regroup = (t: HostTensor): HostTensor => {
      const cols = t.shape.length === 2 ? t.shape[1] : 1;
      const out = new Float32Array(t.data.length);
      for (let h = 0; h < H; h++) {
        for (let part = 0; part < 3; part++) {
          const src = (h * 3 + part) * dh * cols;
          const dst = (part * H + h) * dh * cols;
          out.set(t.data.subarray(src, src + dh * cols), dst);
        }
      }
      return { shape: t.shape, data: out };
    };
    for (let l = 0; l < spec.nLayers; l++) {
      const b = `blocks.${l}.`;
      const h = `gpt_neox.layers.${l}.`;
      m.direct(`${b}ln1.w`, `${h}input_layernorm.weight`, [d]);
      m.direct(`${b}ln1.b`, `${h}input_layernorm.bias`, [d]);
      const qkv = `${h}attention.query_key_value.weight`;
      m.set(`${b}attn.W_QKV`, {
        sources: [[qkv, [3 * d, d]]],
        make: (read) => transpose2d(regroup(read(qkv))),
      });
      if (spec.bias.qkv) {
        const qkvB = `${h}attention.query_key_value.bias`;
        m.set(`${b}attn.b_QKV`, { sources: [[qkvB, [3 * d]]], make: (read) => regroup(read(qkvB)) });
      }
      m.linear(`${b}attn.W_O`, `${h}attention.dense.weight`, d, d);
      if (spec.bias.o) m.direct(`${b}attn.b_O`, `${h}attention.dense.bias`, [d]);
      m.direct(`${b}ln2.w`, `${h}post_attention_layernorm.weight`, [d]);
      m.direct(`${b}ln2.b`, `${h}post_attention_layernorm.bias`, [d]);
      m.linear(`${b}mlp.W_in`, `${h}mlp.dense_h_to_4h.weight`, spec.dMlp, d);
      m.direct(`${b}mlp.b_in`, `${h}mlp.dense_h_to_4h.bias`, [spec.dMlp]);
      m.linear(`${b}mlp.W_out`, `${h}mlp.dense_4h_to_h.weight`, d, spec.dMlp);
      m.direct(`${b}mlp.b_out`, `${h}mlp.dense_4h_to_h.bias`, [d]);
    }
    m.direct('W_E', 'gpt_neox.embed_in.weight', [spec.dVocab, d]);
    m.direct('ln_final.w', 'gpt_neox.final_layer_norm.weight', [d]);
    m.direct('ln_final.b', 'gpt_neox.final_layer_norm.bias', [d]);
    if (names.has('embed_out.weight') || !spec.tiedEmbeddings)
      m.direct('W_U_T', 'embed_out.weight', [spec.dVocab, d]);
    return m;
  },
};
