/**
 * Llama-style models (`model_type` llama, qwen2, mistral; SmolLM is llama):
 * RMSNorm, rotary embeddings over whole heads with `rope_theta`, a SwiGLU MLP
 * (silu(gate) · up), grouped-query attention, and an `lm_head` that is its own
 * tensor unless `tie_word_embeddings`. Linear weights are [out, in] and are
 * transposed here; Qwen2 adds biases to q, k and v.
 */
import { LoupeError } from '../errors';
import {
  ConfigReader,
  FamilyDefinition,
  ModelSpec,
  WeightRecipe,
  activationFromName,
  concat1d,
  concatCols,
  transpose2d,
} from './spec';

export const llama: FamilyDefinition = {
  modelTypes: ['llama', 'qwen2', 'mistral'],

  parseConfig(config, file): ModelSpec {
    const c = new ConfigReader(config, file);
    const modelType = c.str('model_type', 'llama');
    const d = c.int('hidden_size');
    const nHeads = c.int('num_attention_heads');
    const nKvHeads = c.int('num_key_value_heads', nHeads);
    const nLayers = c.int('num_hidden_layers');
    const dHead = c.int('head_dim', d / nHeads);
    if (!Number.isInteger(dHead)) {
      throw new LoupeError(`${file}: hidden_size ${d} is not divisible by num_attention_heads ${nHeads}`);
    }
    if (nHeads % nKvHeads !== 0) {
      throw new LoupeError(
        `${file}: num_attention_heads ${nHeads} is not a multiple of num_key_value_heads ${nKvHeads}`,
      );
    }
    const scaling = c.raw('rope_scaling') as { type?: string; rope_type?: string } | null | undefined;
    const scalingType = scaling ? (scaling.rope_type ?? scaling.type ?? 'unknown') : 'default';
    if (scalingType !== 'default') {
      throw new LoupeError(
        `${file}: rope_scaling '${scalingType}' is not supported yet; Loupe runs plain rotary embeddings (rope_scaling null)`,
      );
    }
    const sliding = modelType !== 'llama' && c.bool('use_sliding_window', false);
    if (sliding)
      throw new LoupeError(`${file}: sliding-window attention is not supported (use_sliding_window is true)`);
    const attentionBias = c.bool('attention_bias', false);
    return {
      family: 'llama',
      modelType,
      nLayers,
      dModel: d,
      nHeads,
      nKvHeads,
      dHead,
      dMlp: c.int('intermediate_size'),
      dVocab: c.int('vocab_size'),
      nCtx: c.int('max_position_embeddings', 2048),
      norm: 'rmsnorm',
      normEps: c.num('rms_norm_eps', 1e-6),
      act: activationFromName(c.str('hidden_act', 'silu'), file),
      positional: 'rotary',
      rotaryDims: dHead,
      ropeTheta: c.num('rope_theta', 10000),
      parallelResidual: false,
      gatedMlp: true,
      attnScale: Array.from({ length: nLayers }, () => 1 / Math.sqrt(dHead)),
      bias: {
        qkv: modelType === 'qwen2' || attentionBias,
        o: attentionBias,
        mlp: c.bool('mlp_bias', false),
        unembed: false,
      },
      bosTokenId: c.optionalTokenId('bos_token_id'),
      tiedEmbeddings: c.bool('tie_word_embeddings', false),
    };
  },

  weightRecipes(spec, names) {
    const d = spec.dModel;
    const qDim = spec.nHeads * spec.dHead;
    const kvDim = spec.nKvHeads * spec.dHead;
    const m = new Map<string, WeightRecipe>();
    const direct = (engine: string, hf: string, shape: number[]): void => {
      m.set(engine, { sources: [[hf, shape]], make: (read) => read(hf), direct: true });
    };
    const linear = (engine: string, hf: string, outF: number, inF: number): void => {
      m.set(engine, { sources: [[hf, [outF, inF]]], make: (read) => transpose2d(read(hf)) });
    };
    for (let l = 0; l < spec.nLayers; l++) {
      const b = `blocks.${l}.`;
      const h = `model.layers.${l}.`;
      const [q, k, v] = ['q', 'k', 'v'].map((x) => `${h}self_attn.${x}_proj`);
      direct(`${b}ln1.w`, `${h}input_layernorm.weight`, [d]);
      m.set(`${b}attn.W_QKV`, {
        sources: [
          [`${q}.weight`, [qDim, d]],
          [`${k}.weight`, [kvDim, d]],
          [`${v}.weight`, [kvDim, d]],
        ],
        make: (read) => concatCols([q, k, v].map((x) => transpose2d(read(`${x}.weight`)))),
      });
      if (spec.bias.qkv) {
        m.set(`${b}attn.b_QKV`, {
          sources: [
            [`${q}.bias`, [qDim]],
            [`${k}.bias`, [kvDim]],
            [`${v}.bias`, [kvDim]],
          ],
          make: (read) => concat1d([q, k, v].map((x) => read(`${x}.bias`))),
        });
      }
      linear(`${b}attn.W_O`, `${h}self_attn.o_proj.weight`, d, qDim);
      if (spec.bias.o) direct(`${b}attn.b_O`, `${h}self_attn.o_proj.bias`, [d]);
      direct(`${b}ln2.w`, `${h}post_attention_layernorm.weight`, [d]);
      linear(`${b}mlp.W_gate`, `${h}mlp.gate_proj.weight`, spec.dMlp, d);
      linear(`${b}mlp.W_in`, `${h}mlp.up_proj.weight`, spec.dMlp, d);
      linear(`${b}mlp.W_out`, `${h}mlp.down_proj.weight`, d, spec.dMlp);
      if (spec.bias.mlp) {
        direct(`${b}mlp.b_gate`, `${h}mlp.gate_proj.bias`, [spec.dMlp]);
        direct(`${b}mlp.b_in`, `${h}mlp.up_proj.bias`, [spec.dMlp]);
        direct(`${b}mlp.b_out`, `${h}mlp.down_proj.bias`, [d]);
      }
    }
    direct('W_E', 'model.embed_tokens.weight', [spec.dVocab, d]);
    direct('ln_final.w', 'model.norm.weight', [d]);
    // Untied models must carry lm_head.weight; asking for it makes a missing one an error.
    if (names.has('lm_head.weight') || !spec.tiedEmbeddings)
      direct('W_U_T', 'lm_head.weight', [spec.dVocab, d]);
    return m;
  },
};
