/**
 * Training batches of activation rows from a corpus, for the dictionary
 * trainers (SAEs, transcoders): the corpus streamed through the model
 * (`streamActivations`), decorrelated by a shuffling buffer, cut into batches
 * of a fixed size, and read again from the start when it runs out (one
 * epoch after another). Where the stream stands (epoch, documents consumed) is
 * what a checkpoint records; a resumed run starts from there, its buffer
 * refilling from that point.
 */
import { readCorpus } from '../corpus';
import { LoupeError } from '../errors';
import { HookedModel } from '../model';
import { seededUniform } from '../random';
import { ShuffleBuffer, hookWidth, streamActivations } from './activations';

export interface ActivationBatchOptions {
  /** A folder of text files, a .jsonl with "text" fields, or a text file. */
  readonly corpus: string;
  /** Each row holds these hooks' values one after the other. */
  readonly hooks: readonly string[];
  readonly contextSize: number;
  /** Rows per batch. */
  readonly batch: number;
  /** Rows the shuffling buffer holds. */
  readonly bufferRows: number;
  readonly seed: number;
  /** Where to start: a resumed run's position (0, 0 for a fresh one). */
  readonly epoch: number;
  readonly documentsDone: number;
  readonly signal?: AbortSignal;
}

export class ActivationBatches {
  /** Values per row: the hooks' widths added up. */
  readonly width: number;
  /** Passes over the corpus completed. */
  epoch: number;
  /** Documents of the current pass consumed. */
  documentsDone: number;
  private readonly rows: AsyncGenerator<Float32Array>;
  private readonly queue: Float32Array[] = [];
  private queued = 0;

  constructor(
    model: HookedModel,
    private readonly options: ActivationBatchOptions,
  ) {
    this.width = options.hooks.reduce((a, h) => a + hookWidth(model, h), 0);
    this.epoch = options.epoch;
    this.documentsDone = options.documentsDone;
    this.rows = this.source(model);
  }

  private async *source(model: HookedModel): AsyncGenerator<Float32Array> {
    const o = this.options;
    const random = seededUniform(o.seed + this.epoch * 7919 + this.documentsDone);
    const buffer = new ShuffleBuffer(o.bufferRows, this.width, random);
    let skip = this.documentsDone;
    for (;;) {
      let any = false;
      for await (const chunk of streamActivations(model, readCorpus(o.corpus), {
        hooks: o.hooks,
        contextSize: o.contextSize,
        skipDocuments: skip,
        signal: o.signal,
      })) {
        any = true;
        this.documentsDone = chunk.documentsDone;
        const out = buffer.push(chunk.rows, chunk.count);
        if (out.count > 0) yield out.rows;
      }
      if (!any && skip === 0) throw new LoupeError(`${o.corpus}: the corpus yields no tokens`);
      const rest = buffer.drain();
      if (rest.count > 0) yield rest.rows;
      this.epoch++;
      skip = 0;
      this.documentsDone = 0;
    }
  }

  /** The next `batch` rows. */
  async next(): Promise<Float32Array> {
    const { batch } = this.options;
    const w = this.width;
    while (this.queued < batch) {
      const r = await this.rows.next();
      if (r.done) throw new LoupeError('the activation stream ended unexpectedly');
      this.queue.push(r.value);
      this.queued += r.value.length / w;
    }
    const x = new Float32Array(batch * w);
    let filled = 0;
    while (filled < batch) {
      const head = this.queue[0];
      const take = Math.min(head.length / w, batch - filled);
      x.set(head.subarray(0, take * w), filled * w);
      filled += take;
      if (take * w === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(take * w);
    }
    this.queued -= batch;
    return x;
  }

  /** Puts a batch back in front (the first one, after measuring the input scale from it). */
  unshift(rows: Float32Array): void {
    this.queue.unshift(rows);
    this.queued += rows.length / this.width;
  }

  async close(): Promise<void> {
    await this.rows.return(undefined);
  }
}
