/**
 * GPT-NeoX / Pythia (`model_type: gpt_neox`). Linear weights are stored
 * [out, in] and transposed here; the fused `query_key_value` output is laid out
 * per head as [head, (q | k | v), d_head], regrouped into all q, then k, then v.
 * Rotary embeddings turn the first `rotary_pct` of each head's dimensions.
 */
import { LoupeError } from '../errors';
import {
  ConfigReader,
  FamilyDefinition,
  HostTensor,
  ModelSpec,
  WeightRecipe,
  activationFromName,
  transpose2d,
} from './spec';

export const neox: FamilyDefinition = {
  modelTypes: ['gpt_neox'],

  parseConfig(config, file): ModelSpec {
    const c = new ConfigReader(config, file);
    const d = c.int('hidden_size');
    const nHeads = c.int('num_attention_heads');
    const nLayers = c.int('num_hidden_layers');
    const dHead = d / nHeads;
    if (!Number.isInteger(dHead)) {
      throw new LoupeError(`${file}: hidden_size ${d} is not divisible by num_attention_heads ${nHeads}`);
    }
    const rotaryPct = c.num('rotary_pct', c.num('partial_rotary_factor', 0.25));
    return {
      family: 'gpt_neox',
      modelType: 'gpt_neox',
      nLayers,
      dModel: d,
      nHeads,
      nKvHeads: nHeads,
      dHead,
      dMlp: c.int('intermediate_size', 4 * d),
      dVocab: c.int('vocab_size'),
      nCtx: c.int('max_position_embeddings', 2048),
      norm: 'layernorm',
      normEps: c.num('layer_norm_eps', 1e-5),
      act: activationFromName(c.str('hidden_act', 'gelu'), file),
      positional: 'rotary',
      rotaryDims: Math.floor(dHead * rotaryPct),
      ropeTheta: c.num('rotary_emb_base', c.num('rope_theta', 10000)),
      parallelResidual: c.bool('use_parallel_residual', true),
      gatedMlp: false,
      attnScale: Array.from({ length: nLayers }, () => 1 / Math.sqrt(dHead)),
      bias: {
        qkv: c.bool('attention_bias', true),
        o: c.bool('attention_bias', true),
        mlp: true,
        unembed: false,
      },
      bosTokenId: c.optionalTokenId('bos_token_id'),
      tiedEmbeddings: c.bool('tie_word_embeddings', false),
    };
  },

  weightRecipes(spec, names) {
    const d = spec.dModel;
    const H = spec.nHeads;
    const dh = spec.dHead;
    const m = new Map<string, WeightRecipe>();
    const linear = (engine: string, hf: string, outF: number, inF: number): void => {
      m.set(engine, { sources: [[hf, [outF, inF]]], make: (read) => transpose2d(read(hf)) });
    };
    const direct = (engine: string, hf: string, shape: number[]): void => {
      m.set(engine, { sources: [[hf, shape]], make: (read) => read(hf), direct: true });
    };
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
      direct(`${b}ln1.w`, `${h}input_layernorm.weight`, [d]);
      direct(`${b}ln1.b`, `${h}input_layernorm.bias`, [d]);
      const qkv = `${h}attention.query_key_value.weight`;
      m.set(`${b}attn.W_QKV`, {
        sources: [[qkv, [3 * d, d]]],
        make: (read) => transpose2d(regroup(read(qkv))),
      });
      if (spec.bias.qkv) {
        const qkvB = `${h}attention.query_key_value.bias`;
        m.set(`${b}attn.b_QKV`, { sources: [[qkvB, [3 * d]]], make: (read) => regroup(read(qkvB)) });
      }
      linear(`${b}attn.W_O`, `${h}attention.dense.weight`, d, d);
      if (spec.bias.o) direct(`${b}attn.b_O`, `${h}attention.dense.bias`, [d]);
      direct(`${b}ln2.w`, `${h}post_attention_layernorm.weight`, [d]);
      direct(`${b}ln2.b`, `${h}post_attention_layernorm.bias`, [d]);
      linear(`${b}mlp.W_in`, `${h}mlp.dense_h_to_4h.weight`, spec.dMlp, d);
      direct(`${b}mlp.b_in`, `${h}mlp.dense_h_to_4h.bias`, [spec.dMlp]);
      linear(`${b}mlp.W_out`, `${h}mlp.dense_4h_to_h.weight`, d, spec.dMlp);
      direct(`${b}mlp.b_out`, `${h}mlp.dense_4h_to_h.bias`, [d]);
    }
    direct('W_E', 'gpt_neox.embed_in.weight', [spec.dVocab, d]);
    direct('ln_final.w', 'gpt_neox.final_layer_norm.weight', [d]);
    direct('ln_final.b', 'gpt_neox.final_layer_norm.bias', [d]);
    if (names.has('embed_out.weight') || !spec.tiedEmbeddings)
      direct('W_U_T', 'embed_out.weight', [spec.dVocab, d]);
    return m;
  },
};
