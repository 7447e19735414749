/**
 * One shape for every sparse dictionary Loupe reads: SAEs (SAELens, Gemma
 * Scope, sparsify), transcoders (SAELens's, sparsify's, circuit-tracer's
 * sets) and cross-layer transcoders. A dictionary is one or more sparse
 * coders; each reads one hook, encodes it into `width` features, and writes
 * its decoder rows to one hook (an SAE: the same one; a transcoder: the MLP
 * output) or, in a CLT, to the MLP outputs of every later layer.
 *
 * Encoding follows each source exactly (see `SparseEncoder`): what differs
 * between formats is whether b_dec is subtracted first, the activation
 * (ReLU, JumpReLU, TopK with or without ReLU, group max), and the layout the
 * weights come in, which the readers turn into [width, d_in] rows.
 */
import { LoupeError } from '../errors';
import { GraphSession } from '../runtime';
import { Tensor } from '../tensor';
import { EncoderGraphOptions, openEncoderGraph, runEncoderGraph } from './encoderGraph';

export type DictionaryFormat =
  'saelens' | 'saelens-transcoder' | 'gemma-scope' | 'sparsify' | 'transcoder-set' | 'cross-layer-transcoder';

/** Where a coder reads: a Loupe hook, optionally scaled per channel (an RMSNorm's weight, for an MLP's input). */
export interface CoderInput {
  readonly hook: string;
  /** attn.hook_z read with its heads flattened into one d_in axis (Gemma Scope's att SAEs, SAELens's hook_z SAEs). */
  readonly flattenHeads: boolean;
  /**
   * The hook is `ln2.hook_normalized` standing for the MLP's input: the same
   * values in LayerNorm models, but before the weight in RMSNorm ones, where
   * `fitDictionary` multiplies the weight back in.
   */
  readonly mlpInput: boolean;
}

export type CoderActivation =
  | { readonly kind: 'relu' }
  | { readonly kind: 'jumprelu' }
  /** The k largest pre-activations; `relu` says whether ReLU follows (SAELens, sparsify) or not (circuit-tracer). */
  | { readonly kind: 'topk'; readonly k: number; readonly relu: boolean }
  /** sparsify's groupmax: the largest ReLU'd pre-activation in each of k equal groups. */
  | { readonly kind: 'groupmax'; readonly k: number };

/** The encoder of one sparse coder: `pre = (x − b_dec·subtract) · W_encᵀ + b_enc`, then the activation. */
export interface EncoderWeights {
  /** [width, d_in], row per feature. */
  readonly wEnc: Float32Array;
  readonly bEnc: Float32Array;
  /** JumpReLU's [width]. */
  readonly threshold: Float32Array | null;
  /** Subtracted from the input first (SAELens's apply_b_dec_to_input, sparsify's SAEs), [d_in]; null: none. */
  readonly inputShift: Float32Array | null;
}

export interface SparseCoder {
  /** Block index the coder belongs to (its input's), null where unknown. */
  readonly layer: number | null;
  readonly input: CoderInput;
  /** Hooks the decoder writes to, one [d_out] block per hook in each decoder row. */
  readonly outputHooks: readonly string[];
  readonly dIn: number;
  readonly dOut: number;
  readonly width: number;
  readonly activation: CoderActivation;
  /** Words for the tree and `--json` notes: 'jumprelu', 'topk (k = 32)', 'relu + skip'. */
  readonly architecture: string;
  readonly hasSkip: boolean;
  /** Feature activations [rows, width] of inputs [rows, d_in]. */
  encode(x: Tensor): Promise<Tensor>;
  /** Decoder rows of the given features, end to end, each [outputHooks.length · d_out]. */
  decoderRows(features: readonly number[]): Float32Array;
  /** b_dec [d_out], added at outputHooks[0] (in a CLT, layer i's bias at layer i). */
  decoderBias(): Float32Array;
  /** W_skip [d_out, d_in], x · W_skipᵀ added at outputHooks[0]; null without a skip connection. */
  skipWeight(): Float32Array | null;
}

export interface Dictionary {
  /** The folder or file it came from. */
  readonly path: string;
  readonly format: DictionaryFormat;
  /** Coders by layer, in order: one for an SAE or single transcoder. */
  readonly coders: readonly SparseCoder[];
  /** Things worth showing (a hook inferred from the path, a hook-point name mapped). */
  readonly notes: readonly string[];
  dispose(): Promise<void>;
}

/** Rows per onnxruntime call: bounds the [rows, width] pre-activations held at once to about 32 MB. */
const MAX_ELEMENTS_PER_CALL = 1 << 23;

/**
 * One coder's encoder: its tensors read when first needed, compiled into an
 * onnxruntime graph (encoderGraph.ts) that then holds them; only the
 * threshold stays in JavaScript, for the activation.
 */
export class SparseEncoder {
  private prepared: Promise<{ session: GraphSession; threshold: Float32Array | null }> | null = null;

  constructor(
    private readonly label: string,
    readonly dIn: number,
    readonly width: number,
    private readonly activation: CoderActivation,
    private readonly load: () => EncoderWeights,
    private readonly options: EncoderGraphOptions = {},
  ) {}

  async encode(x: Tensor): Promise<Tensor> {
    const { dIn, width } = this;
    if (x.dims.length === 0 || x.dims[x.dims.length - 1] !== dIn) {
      throw new LoupeError(
        `${this.label}: input of shape [${x.dims.join(', ')}] does not end in d_in = ${dIn}`,
      );
    }
    const rows = x.data.length / dIn;
    const out = new Float32Array(rows * width);
    if (rows > 0) {
      const { session, threshold } = await this.prepare();
      const step = Math.max(1, Math.floor(MAX_ELEMENTS_PER_CALL / width));
      for (let r0 = 0; r0 < rows; r0 += step) {
        const n = Math.min(step, rows - r0);
        const pre = await runEncoderGraph(session, x.data.subarray(r0 * dIn, (r0 + n) * dIn), n, dIn);
        for (let r = 0; r < n; r++) {
          const row = pre.subarray(r * width, (r + 1) * width);
          activate(this.activation, row, threshold, out.subarray((r0 + r) * width, (r0 + r + 1) * width));
        }
      }
    }
    return { dims: [...x.dims.slice(0, -1), width], data: out };
  }

  async dispose(): Promise<void> {
    const p = this.prepared;
    this.prepared = null;
    if (p) await p.then((s) => s.session.release()).catch(() => undefined);
  }

  private prepare(): Promise<{ session: GraphSession; threshold: Float32Array | null }> {
    if (this.prepared) return this.prepared;
    const made = (async () => {
      const w = this.load();
      const check = (what: string, got: number, want: number): void => {
        if (got !== want) throw new LoupeError(`${this.label}: ${what} has ${got} values, expected ${want}`);
      };
      check('W_enc', w.wEnc.length, this.width * this.dIn);
      check('b_enc', w.bEnc.length, this.width);
      if (w.threshold) check('threshold', w.threshold.length, this.width);
      if (w.inputShift) check('b_dec', w.inputShift.length, this.dIn);
      const session = await openEncoderGraph(this.dIn, this.width, w, this.options);
      return { session, threshold: w.threshold };
    })();
    made.catch(() => {
      if (this.prepared === made) this.prepared = null;
    });
    this.prepared = made;
    return made;
  }
}

/** Applies the activation to one row of pre-activations, into `out` (zeros elsewhere). */
function activate(
  activation: CoderActivation,
  pre: Float32Array,
  threshold: Float32Array | null,
  out: Float32Array,
): void {
  const width = pre.length;
  switch (activation.kind) {
    case 'relu':
      for (let f = 0; f < width; f++) out[f] = pre[f] > 0 ? pre[f] : 0;
      return;
    case 'jumprelu':
      // relu(pre)·[pre > threshold]: with a negative threshold ReLU still applies.
      for (let f = 0; f < width; f++) out[f] = pre[f] > threshold![f] && pre[f] > 0 ? pre[f] : 0;
      return;
    case 'topk': {
      for (const f of topIndices(pre, activation.k)) out[f] = activation.relu ? Math.max(pre[f], 0) : pre[f];
      return;
    }
    case 'groupmax': {
      const size = width / activation.k;
      for (let g = 0; g < activation.k; g++) {
        let best = g * size;
        for (let f = best + 1; f < (g + 1) * size; f++) if (pre[f] > pre[best]) best = f;
        out[best] = Math.max(pre[best], 0);
      }
      return;
    }
  }
}

/** Indices of the k largest values (ties to the lower index), by a partial selection. */
function topIndices(values: Float32Array, k: number): number[] {
  const n = values.length;
  if (k >= n) return Array.from({ length: n }, (_, i) => i);
  // A min-heap of the best k seen so far: O(n log k).
  const heap: number[] = [];
  const worse = (a: number, b: number): boolean =>
    values[a] < values[b] || (values[a] === values[b] && a > b);
  const siftDown = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && worse(heap[l], heap[m])) m = l;
      if (r < heap.length && worse(heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  for (let i = 0; i < n; i++) {
    if (heap.length < k) {
      heap.push(i);
      for (let j = heap.length - 1; j > 0;) {
        const p = (j - 1) >> 1;
        if (!worse(heap[j], heap[p])) break;
        [heap[j], heap[p]] = [heap[p], heap[j]];
        j = p;
      }
    } else if (worse(heap[0], i)) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return heap;
}

/** Transposes a row-major [rows, cols] array (a SAELens-layout W_enc [d_in, width] into [width, d_in]). */
export function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = data[i * cols + j];
  return out;
}

/** Words for an activation, as the tree and notes show it. */
export function describeActivation(a: CoderActivation): string {
  switch (a.kind) {
    case 'topk':
      return `topk (k = ${a.k}${a.relu ? '' : ', no ReLU'})`;
    case 'groupmax':
      return `groupmax (k = ${a.k})`;
    default:
      return a.kind;
  }
}

/**
 * What the coders rebuild at each output hook from their feature activations
 * [T, width] and inputs [T, d_in]: Σ f·W_dec rows over the active features,
 * plus b_dec and x·W_skipᵀ at each coder's own output. Decoder rows are read
 * only for the features that fire.
 */
export function reconstructOutputs(
  coders: readonly SparseCoder[],
  runs: readonly { readonly acts: Tensor; readonly input: Tensor }[],
): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  coders.forEach((coder, c) => {
    const { acts, input } = runs[c];
    const { dIn, dOut, width } = coder;
    const rows = acts.data.length / width;
    const at = (hook: string): Float32Array => {
      let buf = out.get(hook);
      if (!buf) out.set(hook, (buf = new Float32Array(rows * dOut)));
      return buf;
    };
    const active = [
      ...new Set([...acts.data.keys()].filter((i) => acts.data[i] !== 0).map((i) => i % width)),
    ].sort((a, b) => a - b);
    const decoder = coder.decoderRows(active);
    const block = coder.outputHooks.length * dOut;
    coder.outputHooks.forEach((hook, o) => {
      const buf = at(hook);
      for (let r = 0; r < rows; r++) {
        active.forEach((f, j) => {
          const a = acts.data[r * width + f];
          if (a === 0) return;
          const row = j * block + o * dOut;
          for (let d = 0; d < dOut; d++) buf[r * dOut + d] += a * decoder[row + d];
        });
      }
    });
    const own = at(coder.outputHooks[0]);
    const bias = coder.decoderBias();
    const skip = coder.skipWeight();
    for (let r = 0; r < rows; r++) {
      for (let d = 0; d < dOut; d++) {
        let s = bias[d];
        if (skip) for (let i = 0; i < dIn; i++) s += input.data[r * dIn + i] * skip[d * dIn + i];
        own[r * dOut + d] += s;
      }
    }
  });
  return out;
}
