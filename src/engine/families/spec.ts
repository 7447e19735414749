/**
 * What the graph builder needs to know about a model, whatever its family:
 * the Hugging Face config read into one shape, and the checkpoint's tensors
 * mapped onto the engine's own weight names (TransformerLens's, in the
 * `x @ W` layout).
 */
import { LoupeError } from '../errors';

export type Family =
  'gpt2' | 'gpt_neox' | 'llama' | 'mistral' | 'qwen3' | 'phi3' | 'gemma' | 'gemma2' | 'gemma3_text';
export type Activation = 'gelu_tanh' | 'gelu' | 'relu' | 'silu';

export interface ModelSpec {
  readonly family: Family;
  /** `model_type` as the config wrote it (llama, qwen2, mistral, ...). */
  readonly modelType: string;
  readonly nLayers: number;
  readonly dModel: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly dHead: number;
  readonly dMlp: number;
  readonly dVocab: number;
  readonly nCtx: number;
  readonly norm: 'layernorm' | 'rmsnorm';
  readonly normEps: number;
  readonly act: Activation;
  readonly positional: 'learned' | 'rotary';
  /** Leading dimensions of each head that rotary embeddings turn (0 without rotary). */
  readonly rotaryDims: number;
  /** Each layer's rotary frequencies (empty without rotary); layers with equal ones share a table. */
  readonly rope: readonly RopeSpec[];
  readonly parallelResidual: boolean;
  readonly gatedMlp: boolean;
  /** Multiplier on q·k for each layer (1/sqrt(d_head), `query_pre_attn_scalar`^-0.5, or GPT-2's 1/(layer+1) on top). */
  readonly attnScale: readonly number[];
  /** Each layer's sliding window W (query i sees key j iff i - W < j <= i), or null for full causal attention. */
  readonly slidingWindow: readonly (number | null)[];
  /** `cap` in cap · tanh(scores / cap) on attention scores before the mask (Gemma 2), or null. */
  readonly attnSoftcap: number | null;
  /** `cap` in cap · tanh(logits / cap) on the final logits (Gemma 2), or null. */
  readonly finalSoftcap: number | null;
  /** Factor on the token embedding before the first block (Gemma: √d_model as an f32), or null. */
  readonly embedScale: number | null;
  /** RMSNorms after attention and after the MLP, before each joins the residual stream (Gemma 2/3). */
  readonly postNorms: boolean;
  /** Per-head RMSNorm of queries and keys before rotary (Qwen3, Gemma 3). */
  readonly qkNorm: boolean;
  readonly bias: {
    readonly qkv: boolean;
    readonly o: boolean;
    readonly mlp: boolean;
    readonly unembed: boolean;
  };
  /** Unembedding shares the token embedding's weights. */
  readonly tiedEmbeddings: boolean;
  /** Token id prepended as BOS when the tokenizer does not add one itself. */
  readonly bosTokenId: number | null;
}

/** How rotary frequencies are made from their base (Hugging Face's `rope_scaling` types the engine runs). */
export type RopeScaling =
  | { readonly type: 'default' }
  | { readonly type: 'linear'; readonly factor: number }
  | {
      readonly type: 'llama3';
      readonly factor: number;
      readonly lowFreqFactor: number;
      readonly highFreqFactor: number;
      readonly originalMaxPositions: number;
    };

export interface RopeSpec {
  /** `rope_theta` (or `rope_local_base_freq` on Gemma 3's local layers). */
  readonly base: number;
  readonly scaling: RopeScaling;
}

/**
 * Engine weight names (TransformerLens-like) and their layouts, all ready for
 * `x @ W`: `W_E` [vocab, d], `W_pos` [n_ctx, d], per block
 * `blocks.L.ln1.w|b`, `blocks.L.attn.W_QKV` [d, (H + 2·H_kv)·d_head] with
 * `b_QKV`, `blocks.L.attn.W_O` [H·d_head, d] with `b_O`, `blocks.L.ln2.w|b`,
 * `blocks.L.mlp.W_in` [d, d_mlp] (`W_gate` too for gated MLPs) with `b_in`,
 * `blocks.L.mlp.W_out` [d_mlp, d] with `b_out`, `ln_final.w|b`, where a
 * model has them `blocks.L.ln1_post.w`, `blocks.L.ln2_post.w` and
 * `blocks.L.attn.q_norm.w|k_norm.w` [d_head] (RMSNorm weights are stored as
 * applied: Gemma's 1 + w is added at compile time), and
 * `W_U_T` [vocab, d] (the unembedding stored transposed, so a tied model reads
 * `W_E` itself) with `b_U`.
 */
export type EngineWeightName = string;

/** A dense f32 array with its shape, as read from (or made for) a checkpoint. */
export interface HostTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** How to make one engine weight from checkpoint tensors. */
export interface WeightRecipe {
  /**
   * Checkpoint tensors it reads and the shape the config says each must have:
   * checked for every weight before any is loaded, so a missing tensor or a
   * config/weights mismatch is reported at once.
   */
  readonly sources: ReadonlyArray<readonly [name: string, shape: readonly number[]]>;
  readonly make: (read: (name: string) => HostTensor) => HostTensor;
  /** The weight is its one source as stored (no transform), so it can be streamed. */
  readonly direct?: boolean;
}

export interface FamilyDefinition {
  readonly modelTypes: readonly string[];
  /** The config key of the layer count, named when the weights hold fewer layers. */
  readonly layersKey: string;
  parseConfig(config: Record<string, unknown>, configFile: string): ModelSpec;
  /** Engine weight name → recipe, given the checkpoint's tensor names (which reveal its key layout). */
  weightRecipes(spec: ModelSpec, tensorNames: ReadonlySet<string>): Map<EngineWeightName, WeightRecipe>;
}

// ---- small array helpers the family files share ----

export function transpose2d(t: HostTensor): HostTensor {
  const [r, c] = t.shape;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) {
    const row = i * c;
    for (let j = 0; j < c; j++) out[j * r + i] = t.data[row + j];
  }
  return { shape: [c, r], data: out };
}

/** Concatenates 2-D tensors along their last axis. */
export function concatCols(parts: readonly HostTensor[]): HostTensor {
  const rows = parts[0].shape[0];
  const cols = parts.reduce((a, p) => a + p.shape[1], 0);
  const out = new Float32Array(rows * cols);
  let c0 = 0;
  for (const p of parts) {
    const pc = p.shape[1];
    for (let i = 0; i < rows; i++) out.set(p.data.subarray(i * pc, (i + 1) * pc), i * cols + c0);
    c0 += pc;
  }
  return { shape: [rows, cols], data: out };
}

export function concat1d(parts: readonly HostTensor[]): HostTensor {
  const n = parts.reduce((a, p) => a + p.data.length, 0);
  const out = new Float32Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p.data, o);
    o += p.data.length;
  }
  return { shape: [n], data: out };
}

export function zeros(shape: readonly number[]): HostTensor {
  return { shape, data: new Float32Array(shape.reduce((a, d) => a * d, 1)) };
}

/** Sizes past these are refused before anything is allocated from them; real models are far below. */
export const CONFIG_LIMITS = {
  layers: 1024,
  heads: 4096,
  width: 1 << 20,
  vocab: 1 << 24,
  positions: 1 << 24,
} as const;

/**
 * Typed readers for config.json fields, with errors that name the file and
 * the key. The one validated reader every family uses: positive sizes with an
 * upper bound, positive or (0, 1] floats, optional values where null means
 * "off", nested objects such as `rope_scaling` (their keys named in full).
 */
export class ConfigReader {
  constructor(
    private readonly config: Record<string, unknown>,
    readonly file: string,
    private readonly prefix = '',
  ) {}

  has(key: string): boolean {
    return this.config[key] !== undefined && this.config[key] !== null;
  }

  private name(key: string): string {
    return `'${this.prefix}${key}'`;
  }

  private fail(key: string, what: string): never {
    throw new LoupeError(`${this.file}: ${this.name(key)} ${what}, got ${JSON.stringify(this.config[key])}`);
  }

  private missing(key: string): never {
    throw new LoupeError(`${this.file}: ${this.name(key)} is missing`);
  }

  /** A positive integer, at most `max` (sizes are bounded before anything is allocated from them). */
  int(key: string, fallback?: number, max: number = Number.MAX_SAFE_INTEGER): number {
    const v = this.config[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      this.missing(key);
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) this.fail(key, 'must be a positive integer');
    if (v > max) this.fail(key, `must be at most ${max}`);
    return v;
  }

  num(key: string, fallback?: number): number {
    const v = this.config[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      this.missing(key);
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, 'must be a number');
    return v;
  }

  /** A finite number > 0 (epsilons, rotary bases, scaling factors, soft-caps). */
  positive(key: string, fallback?: number): number {
    const v = this.num(key, fallback);
    if (v <= 0) this.fail(key, 'must be a number > 0');
    return v;
  }

  /** A number in (0, 1] (shares such as `rotary_pct`). */
  fraction(key: string, fallback: number): number {
    const v = this.num(key, fallback);
    if (v <= 0 || v > 1) this.fail(key, 'must be a number in (0, 1]');
    return v;
  }

  /**
   * A number > 0, or null where null turns the feature off; an absent key is
   * `absent` (Hugging Face's default, which for some fields is on).
   */
  optionalPositive(key: string, absent: number | null = null): number | null {
    if (this.config[key] === undefined) return absent;
    return this.has(key) ? this.positive(key) : null;
  }

  /** `optionalPositive` for a positive integer (windows). */
  optionalIntOr(key: string, absent: number | null): number | null {
    if (this.config[key] === undefined) return absent;
    return this.optionalInt(key);
  }

  /** Zero, or a field the engine does not implement refused by name (dropouts are not: inference ignores them). */
  zero(key: string, why: string): void {
    if (this.has(key) && this.num(key) !== 0) {
      throw new LoupeError(`${this.file}: ${this.name(key)} is ${JSON.stringify(this.config[key])}; ${why}`);
    }
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.config[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') this.fail(key, 'must be true or false');
    return v;
  }

  str(key: string, fallback: string): string {
    const v = this.config[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string') this.fail(key, 'must be a string');
    return v;
  }

  optionalInt(key: string, max?: number): number | null {
    return this.has(key) ? this.int(key, undefined, max) : null;
  }

  /** A token id: 0 is a valid one (many vocabularies put a special token first). */
  optionalTokenId(key: string): number | null {
    if (!this.has(key)) return null;
    const v = this.config[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
      this.fail(key, 'must be a token id (an integer >= 0)');
    }
    return v;
  }

  /** A nested object (such as `rope_scaling`) read with the same checks, or null when absent or null. */
  optionalObject(key: string): ConfigReader | null {
    if (!this.has(key)) return null;
    const v = this.config[key];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, 'must be an object or null');
    return new ConfigReader(v as Record<string, unknown>, this.file, `${this.prefix}${key}.`);
  }

  /** A list of strings, each one of `allowed` (such as `layer_types`), of exactly `length` entries. */
  optionalChoices<T extends string>(key: string, allowed: readonly T[], length: number): T[] | null {
    if (!this.has(key)) return null;
    const v = this.config[key];
    if (!Array.isArray(v) || v.length !== length) this.fail(key, `must be a list of ${length} entries`);
    for (const x of v as unknown[]) {
      if (typeof x !== 'string' || !(allowed as readonly string[]).includes(x)) {
        throw new LoupeError(
          `${this.file}: ${this.name(key)} holds ${JSON.stringify(x)}; each entry must be one of ${allowed.join(', ')}`,
        );
      }
    }
    return v as T[];
  }

  /** Refuses a field the engine does not implement when it is set (any value but null or `off`). */
  refuse(key: string, why: string, off: unknown = null): void {
    const v = this.config[key];
    if (v === undefined || v === null || v === off) return;
    throw new LoupeError(`${this.file}: ${this.name(key)} is ${JSON.stringify(v)}, which ${why}`);
  }

  /** An activation function by its Hugging Face name (`ACT2FN`'s keys the engine runs). */
  activation(key: string, fallback: string): Activation {
    const name = this.str(key, fallback);
    switch (name) {
      case 'gelu_new':
      case 'gelu_pytorch_tanh':
      case 'gelu_fast':
        return 'gelu_tanh';
      case 'gelu':
        return 'gelu';
      case 'relu':
        return 'relu';
      case 'silu':
      case 'swish':
        return 'silu';
      default:
        throw new LoupeError(
          `${this.file}: ${this.name(key)} is '${name}', which is not supported (gelu_new, gelu_pytorch_tanh, gelu, relu, silu are)`,
        );
    }
  }

  raw(key: string): unknown {
    return this.config[key];
  }
}
