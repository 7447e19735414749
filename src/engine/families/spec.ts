/**
 * What the graph builder needs to know about a model, whatever its family:
 * the Hugging Face config read into one shape, and the checkpoint's tensors
 * mapped onto the engine's own weight names (TransformerLens's, in the
 * `x @ W` layout).
 */
import { LoupeError } from '../errors';

export type Family = 'gpt2' | 'gpt_neox' | 'llama';
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
  readonly ropeTheta: number;
  readonly parallelResidual: boolean;
  readonly gatedMlp: boolean;
  /** Multiplier on q·k for each layer (1/sqrt(d_head), or GPT-2's optional 1/(layer+1) on top). */
  readonly attnScale: readonly number[];
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

/**
 * Engine weight names (TransformerLens-like) and their layouts, all ready for
 * `x @ W`: `W_E` [vocab, d], `W_pos` [n_ctx, d], per block
 * `blocks.L.ln1.w|b`, `blocks.L.attn.W_QKV` [d, (H + 2·H_kv)·d_head] with
 * `b_QKV`, `blocks.L.attn.W_O` [H·d_head, d] with `b_O`, `blocks.L.ln2.w|b`,
 * `blocks.L.mlp.W_in` [d, d_mlp] (`W_gate` too for gated MLPs) with `b_in`,
 * `blocks.L.mlp.W_out` [d_mlp, d] with `b_out`, `ln_final.w|b`, and
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

/** Typed readers for config.json fields, with errors that name the file and the key. */
export class ConfigReader {
  constructor(
    private readonly config: Record<string, unknown>,
    private readonly file: string,
  ) {}

  has(key: string): boolean {
    return this.config[key] !== undefined && this.config[key] !== null;
  }

  int(key: string, fallback?: number): number {
    const v = this.config[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new LoupeError(`${this.file}: '${key}' is missing`);
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new LoupeError(`${this.file}: '${key}' must be a positive integer, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  num(key: string, fallback?: number): number {
    const v = this.config[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new LoupeError(`${this.file}: '${key}' is missing`);
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new LoupeError(`${this.file}: '${key}' must be a number, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.config[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean')
      throw new LoupeError(`${this.file}: '${key}' must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  str(key: string, fallback: string): string {
    const v = this.config[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'string')
      throw new LoupeError(`${this.file}: '${key}' must be a string, got ${JSON.stringify(v)}`);
    return v;
  }

  optionalInt(key: string): number | null {
    return this.has(key) ? this.int(key) : null;
  }

  /** A token id: 0 is a valid one (many vocabularies put a special token first). */
  optionalTokenId(key: string): number | null {
    if (!this.has(key)) return null;
    const v = this.config[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
      throw new LoupeError(
        `${this.file}: '${key}' must be a token id (an integer >= 0), got ${JSON.stringify(v)}`,
      );
    }
    return v;
  }

  raw(key: string): unknown {
    return this.config[key];
  }
}

export function activationFromName(name: string, file: string): Activation {
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
      throw new LoupeError(`${file}: activation '${name}' is not supported (gelu_new, gelu, relu, silu are)`);
  }
}
