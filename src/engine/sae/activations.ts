/**
 * Activations at one or more hooks, streamed from a corpus: documents are
 * tokenized with BOS, cut into windows of `contextSize` (each window starts
 * with BOS), run through the model a few windows at a time, and every non-BOS
 * position's activation row comes out (the hooks' values side by side, so
 * that one forward pass feeds every layer's transcoder). BOS positions are left out, as they carry the
 * attention sink's outsized norm rather than the text's content.
 *
 * `ShuffleBuffer` then decorrelates rows from neighbouring tokens: once full,
 * each arriving row replaces a random resident, which leaves; memory stays at
 * the buffer's size however long the corpus.
 */
import { CorpusDocument } from '../corpus';
import { CancelledError, LoupeError } from '../errors';
import { HookedModel } from '../model';

export interface ActivationChunk {
  /** Rows of `width` values each. */
  readonly rows: Float32Array;
  readonly count: number;
  /** Documents fully consumed so far (for resuming). */
  readonly documentsDone: number;
}

export interface ActivationStreamOptions {
  /** Each row holds these hooks' values one after the other. */
  readonly hooks: readonly string[];
  readonly contextSize: number;
  /** Windows per forward pass. */
  readonly windowsPerRun?: number;
  /** Documents to skip first (a resumed run's progress). */
  readonly skipDocuments?: number;
  readonly signal?: AbortSignal;
}

/** Width of one activation row at a hook (hook_z flattens heads). */
export function hookWidth(model: HookedModel, hook: string): number {
  const h = model.hookByName(hook);
  const dims = h.dims.slice(h.dims.indexOf('pos') + 1);
  const sizes: Record<string, number> = {
    d_model: model.spec.dModel,
    d_mlp: model.spec.dMlp,
    head: model.spec.nHeads,
    kv_head: model.spec.nKvHeads,
    d_head: model.spec.dHead,
    one: 1,
  };
  if (h.dims[1] !== 'pos')
    throw new LoupeError(`hook ${hook} is not per token ([batch, pos, ...]); SAEs read per-token hooks`);
  return dims.reduce((a, d) => a * sizes[d], 1);
}

/**
 * A document's token ids cut into consecutive windows of at most
 * `contextSize`: each is BOS (when there is one) and the next
 * `contextSize - 1` tokens. Training, evaluation and dashboards read text so.
 */
export function contextWindows(ids: readonly number[], bos: number | null, contextSize: number): number[][] {
  const windows: number[][] = [];
  for (let i = 0; i < ids.length; i += contextSize - 1) {
    const body = ids.slice(i, i + contextSize - 1);
    windows.push(bos === null ? body : [bos, ...body]);
  }
  return windows;
}

export async function* streamActivations(
  model: HookedModel,
  documents: AsyncIterable<CorpusDocument>,
  options: ActivationStreamOptions,
): AsyncGenerator<ActivationChunk> {
  const bos = model.tokenizer?.bosTokenId ?? null;
  if (bos === null) throw new LoupeError('the model has no BOS token; SAE training windows start with one');
  const widths = options.hooks.map((h) => hookWidth(model, h));
  const width = widths.reduce((a, w) => a + w, 0);
  const perRun = options.windowsPerRun ?? 8;
  const ctx = Math.min(options.contextSize, model.spec.nCtx);
  let pending: number[][] = [];
  let documentsDone = 0;

  const run = async (): Promise<ActivationChunk> => {
    const padded = await model.runHooksPadded(pending, options.hooks);
    const count = padded.lengths.reduce((a, n) => a + n - 1, 0);
    const rows = new Float32Array(count * width);
    let offset = 0;
    options.hooks.forEach((hook, h) => {
      const acts = padded.hooks.get(hook)!;
      const T = acts.dims[1];
      const w = widths[h];
      let r = 0;
      padded.lengths.forEach((n, b) => {
        for (let t = 1; t < n; t++, r++) {
          const start = (b * T + t) * w;
          rows.set(acts.data.subarray(start, start + w), r * width + offset);
        }
      });
      offset += w;
    });
    pending = [];
    return { rows, count, documentsDone };
  };

  let index = 0;
  for await (const doc of documents) {
    if (index++ < (options.skipDocuments ?? 0)) {
      documentsDone++;
      continue;
    }
    if (options.signal?.aborted) throw new CancelledError();
    const ids = (await model.tokenize(doc.text, { prependBos: false })).map((t) => t.id);
    for (const window of contextWindows(ids, bos, ctx)) {
      pending.push(window);
      if (pending.length === perRun) yield await run();
    }
    documentsDone++;
  }
  if (pending.length > 0) yield await run();
}

export class ShuffleBuffer {
  private readonly store: Float32Array;
  private filled = 0;

  constructor(
    readonly capacity: number,
    readonly width: number,
    private readonly random: () => number,
  ) {
    this.store = new Float32Array(capacity * width);
  }

  get size(): number {
    return this.filled;
  }

  /**
   * Adds rows; returns the rows pushed out (random residents once the buffer
   * is full), in a new array of `count` rows.
   */
  push(rows: Float32Array, count: number): { rows: Float32Array; count: number } {
    const w = this.width;
    let i = 0;
    while (i < count && this.filled < this.capacity) {
      this.store.set(rows.subarray(i * w, (i + 1) * w), this.filled * w);
      this.filled++;
      i++;
    }
    const out = new Float32Array((count - i) * w);
    for (let o = 0; i < count; i++, o++) {
      const j = Math.floor(this.random() * this.capacity);
      out.set(this.store.subarray(j * w, (j + 1) * w), o * w);
      this.store.set(rows.subarray(i * w, (i + 1) * w), j * w);
    }
    return { rows: out, count: out.length / w };
  }

  /** Empties the buffer in random order (the end of a corpus). */
  drain(): { rows: Float32Array; count: number } {
    const w = this.width;
    const order = Array.from({ length: this.filled }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const out = new Float32Array(this.filled * w);
    order.forEach((src, o) => out.set(this.store.subarray(src * w, (src + 1) * w), o * w));
    const count = this.filled;
    this.filled = 0;
    return { rows: out, count };
  }
}
