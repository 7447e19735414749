/**
 * GPT-2 (`model_type: gpt2`). Conv1D weights are stored [in, out], already the
 * `x @ W` layout. Two key layouts exist: `transformer.h.0...` (saves by
 * `transformers`) and `h.0...` (the original `gpt2` upload). The unembedding
 * is always tied to `wte`.
 */
import { LoupeError } from '../errors';
import { ConfigReader, FamilyDefinition, ModelSpec, WeightRecipe, activationFromName } from './spec';

export const gpt2: FamilyDefinition = {
  modelTypes: ['gpt2'],

  parseConfig(config, file): ModelSpec {
    const c = new ConfigReader(config, file);
    const d = c.int('n_embd');
    const nHeads = c.int('n_head');
    const nLayers = c.int('n_layer');
    const dHead = d / nHeads;
    if (!Number.isInteger(dHead))
      throw new LoupeError(`${file}: n_embd ${d} is not divisible by n_head ${nHeads}`);
    const base = c.bool('scale_attn_weights', true) ? 1 / Math.sqrt(dHead) : 1;
    const byLayer = c.bool('scale_attn_by_inverse_layer_idx', false);
    return {
      family: 'gpt2',
      modelType: 'gpt2',
      nLayers,
      dModel: d,
      nHeads,
      nKvHeads: nHeads,
      dHead,
      dMlp: c.optionalInt('n_inner') ?? 4 * d,
      dVocab: c.int('vocab_size'),
      nCtx: c.int('n_positions', c.int('n_ctx', 1024)),
      norm: 'layernorm',
      normEps: c.num('layer_norm_epsilon', 1e-5),
      act: activationFromName(c.str('activation_function', 'gelu_new'), file),
      positional: 'learned',
      rotaryDims: 0,
      ropeTheta: 0,
      parallelResidual: false,
      gatedMlp: false,
      attnScale: Array.from({ length: nLayers }, (_, l) => (byLayer ? base / (l + 1) : base)),
      bias: { qkv: true, o: true, mlp: true, unembed: false },
      bosTokenId: c.optionalTokenId('bos_token_id'),
      tiedEmbeddings: true,
    };
  },

  weightRecipes(spec, names) {
    const p = names.has('transformer.wte.weight') ? 'transformer.' : '';
    const d = spec.dModel;
    const m = new Map<string, WeightRecipe>();
    const direct = (engine: string, hf: string, shape: number[]): void => {
      m.set(engine, { sources: [[p + hf, shape]], make: (read) => read(p + hf), direct: true });
    };
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
