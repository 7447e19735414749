/**
 * What the family files share: reading the sizes every decoder config gives
 * (checked against each other and bounded before anything is allocated from
 * them), recipe maps from Hugging Face tensor names to engine weights, and
 * the Llama-style key layout (`model.layers.L.self_attn.q_proj`, ...) that
 * Llama, Qwen, Mistral and the Gemmas share.
 */
import { LoupeError } from '../errors';
import {
  CONFIG_LIMITS,
  ConfigReader,
  ModelSpec,
  WeightRecipe,
  concat1d,
  concatCols,
  transpose2d,
} from './spec';

export interface DecoderSizes {
  readonly dModel: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly dHead: number;
  readonly nLayers: number;
  readonly dMlp: number;
  readonly dVocab: number;
  readonly nCtx: number;
}

/** The config keys a family spells its sizes with (null: the family has no such key). */
export interface SizeKeys {
  readonly hidden: string;
  readonly heads: string;
  readonly kvHeads: string | null;
  /** `head_dim` where the config may give it; otherwise `headDimDefault`, or hidden / heads. */
  readonly headDim: string | null;
  readonly headDimDefault?: number;
  readonly layers: string;
  readonly mlp: string;
  /** The MLP width when the config leaves it out (GPT-2, GPT-NeoX: 4 · hidden), or undefined if required. */
  readonly mlpDefault?: number;
  readonly positions: string;
  readonly positionsDefault: number;
  /** `vocab_size` where the config may leave it out (Gemma 3's text_config), or undefined if required. */
  readonly vocabDefault?: number;
}

export function readSizes(c: ConfigReader, k: SizeKeys): DecoderSizes {
  const L = CONFIG_LIMITS;
  const dModel = c.int(k.hidden, undefined, L.width);
  const nHeads = c.int(k.heads, undefined, L.heads);
  const nKvHeads = k.kvHeads ? c.int(k.kvHeads, nHeads, L.heads) : nHeads;
  const given = (k.headDim ? c.optionalInt(k.headDim, L.width) : null) ?? k.headDimDefault ?? null;
  if (given === null && dModel % nHeads !== 0) {
    throw new LoupeError(`${c.file}: '${k.hidden}' ${dModel} is not divisible by '${k.heads}' ${nHeads}`);
  }
  if (nHeads % nKvHeads !== 0) {
    throw new LoupeError(`${c.file}: '${k.heads}' ${nHeads} is not a multiple of '${k.kvHeads}' ${nKvHeads}`);
  }
  const dHead = given ?? dModel / nHeads;
  if (nHeads * dHead > L.width) {
    throw new LoupeError(
      `${c.file}: '${k.heads}' × head size (${nHeads} × ${dHead}) is larger than ${L.width}`,
    );
  }
  return {
    dModel,
    nHeads,
    nKvHeads,
    dHead,
    nLayers: c.int(k.layers, undefined, L.layers),
    dMlp: c.int(k.mlp, k.mlpDefault, L.width),
    dVocab: c.int('vocab_size', k.vocabDefault, L.vocab),
    nCtx: c.int(k.positions, k.positionsDefault, L.positions),
  };
}

/** One value per layer. */
export function perLayer<T>(n: number, f: (layer: number) => T): T[] {
  return Array.from({ length: n }, (_, l) => f(l));
}

/** Engine weight name → recipe, filled with the few kinds of mapping the families use. */
export class Recipes extends Map<string, WeightRecipe> {
  /** The tensor as stored. */
  direct(engine: string, hf: string, shape: readonly number[]): void {
    this.set(engine, { sources: [[hf, shape]], make: (read) => read(hf), direct: true });
  }

  /** An `nn.Linear` weight [out, in], transposed to the engine's [in, out]. */
  linear(engine: string, hf: string, outF: number, inF: number): void {
    this.set(engine, { sources: [[hf, [outF, inF]]], make: (read) => transpose2d(read(hf)) });
  }

  /** Rows [from, to) of a fused `nn.Linear` weight [out, in] (Phi-3's qkv_proj, gate_up_proj), transposed. */
  linearRows(engine: string, hf: string, shape: readonly [number, number], from: number, to: number): void {
    this.set(engine, {
      sources: [[hf, shape]],
      make: (read) => {
        const t = read(hf);
        const cols = shape[1];
        return transpose2d({ shape: [to - from, cols], data: t.data.slice(from * cols, to * cols) });
      },
    });
  }

  /** Gemma's RMSNorm weight, stored as the 1 + w it is applied as (in f32, as Hugging Face computes it). */
  plusOne(engine: string, hf: string, size: number): void {
    this.set(engine, {
      sources: [[hf, [size]]],
      make: (read) => {
        const t = read(hf);
        return { shape: t.shape, data: t.data.map((x) => 1 + x) };
      },
    });
  }

  /** Separate q, k, v projections fused into W_QKV [d, (H + 2·H_kv)·d_head] (and b_QKV). */
  qkv(
    engine: string,
    hf: readonly [string, string, string],
    rows: readonly [number, number, number],
    d: number,
    bias: boolean,
  ): void {
    this.set(`${engine}W_QKV`, {
      sources: hf.map((x, i) => [`${x}.weight`, [rows[i], d]] as const),
      make: (read) => concatCols(hf.map((x) => transpose2d(read(`${x}.weight`)))),
    });
    if (!bias) return;
    this.set(`${engine}b_QKV`, {
      sources: hf.map((x, i) => [`${x}.bias`, [rows[i]]] as const),
      make: (read) => concat1d(hf.map((x) => read(`${x}.bias`))),
    });
  }
}

/** How a Llama-layout family names its per-layer norms (Gemma 2/3 have four, where Llama has two). */
export interface LlamaNorms {
  readonly ln1: string;
  readonly ln2: string;
  readonly ln1Post?: string;
  readonly ln2Post?: string;
  /** Gemma: weights applied as 1 + w. */
  readonly plusOne: boolean;
}

/** Where the text model's tensors sit: `model.` and `lm_head.weight`, unless nested in a multimodal checkpoint. */
export interface LlamaKeys {
  readonly model: string;
  readonly lmHead: string;
}

/**
 * The Llama key layout: `model.embed_tokens`, `model.layers.L.{norms}`,
 * `self_attn.{q,k,v,o}_proj` (with `q_norm`/`k_norm` where the spec has them),
 * `mlp.{gate,up,down}_proj`, `model.norm`, and `lm_head` unless tied.
 */
export function llamaLayoutRecipes(
  spec: ModelSpec,
  names: ReadonlySet<string>,
  norms: LlamaNorms,
  keys: LlamaKeys = { model: 'model.', lmHead: 'lm_head.weight' },
): Recipes {
  const d = spec.dModel;
  const qDim = spec.nHeads * spec.dHead;
  const kvDim = spec.nKvHeads * spec.dHead;
  const m = new Recipes();
  const normW = (engine: string, hf: string, size: number): void =>
    norms.plusOne ? m.plusOne(engine, hf, size) : m.direct(engine, hf, [size]);
  for (let l = 0; l < spec.nLayers; l++) {
    const b = `blocks.${l}.`;
    const h = `${keys.model}layers.${l}.`;
    const [q, k, v] = ['q', 'k', 'v'].map((x) => `${h}self_attn.${x}_proj`);
    normW(`${b}ln1.w`, `${h}${norms.ln1}.weight`, d);
    m.qkv(`${b}attn.`, [q, k, v], [qDim, kvDim, kvDim], d, spec.bias.qkv);
    if (spec.qkNorm) {
      normW(`${b}attn.q_norm.w`, `${h}self_attn.q_norm.weight`, spec.dHead);
      normW(`${b}attn.k_norm.w`, `${h}self_attn.k_norm.weight`, spec.dHead);
    }
    m.linear(`${b}attn.W_O`, `${h}self_attn.o_proj.weight`, d, qDim);
    if (spec.bias.o) m.direct(`${b}attn.b_O`, `${h}self_attn.o_proj.bias`, [d]);
    if (norms.ln1Post) normW(`${b}ln1_post.w`, `${h}${norms.ln1Post}.weight`, d);
    normW(`${b}ln2.w`, `${h}${norms.ln2}.weight`, d);
    m.linear(`${b}mlp.W_gate`, `${h}mlp.gate_proj.weight`, spec.dMlp, d);
    m.linear(`${b}mlp.W_in`, `${h}mlp.up_proj.weight`, spec.dMlp, d);
    m.linear(`${b}mlp.W_out`, `${h}mlp.down_proj.weight`, d, spec.dMlp);
    if (spec.bias.mlp) {
      m.direct(`${b}mlp.b_gate`, `${h}mlp.gate_proj.bias`, [spec.dMlp]);
      m.direct(`${b}mlp.b_in`, `${h}mlp.up_proj.bias`, [spec.dMlp]);
      m.direct(`${b}mlp.b_out`, `${h}mlp.down_proj.bias`, [d]);
    }
    if (norms.ln2Post) normW(`${b}ln2_post.w`, `${h}${norms.ln2Post}.weight`, d);
  }
  m.direct('W_E', `${keys.model}embed_tokens.weight`, [spec.dVocab, d]);
  normW('ln_final.w', `${keys.model}norm.weight`, d);
  // Untied models must carry lm_head.weight; asking for it makes a missing one an error.
  if (names.has(keys.lmHead) || !spec.tiedEmbeddings) m.direct('W_U_T', keys.lmHead, [spec.dVocab, d]);
  return m;
}

/**
 * Which layers slide, from Hugging Face's `layer_types` (`sliding_attention` /
 * `full_attention`), or from `defaultSliding(l)` where the config has none.
 */
export function slidingLayers(
  c: ConfigReader,
  nLayers: number,
  defaultSliding: (layer: number) => boolean,
): boolean[] {
  const types = c.optionalChoices('layer_types', ['sliding_attention', 'full_attention'] as const, nLayers);
  return perLayer(nLayers, (l) => (types ? types[l] === 'sliding_attention' : defaultSliding(l)));
}
