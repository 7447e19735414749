/**
 * Every onnxruntime call lives here: creating a session from a graph file and
 * running it. The rest of the engine sees plain typed arrays.
 */
import * as ort from 'onnxruntime-node';
import { Tensor } from './tensor';

export interface RuntimeOptions {
  /** Intra-op threads; 0 lets onnxruntime choose. */
  readonly threads: number;
  /**
   * Whether onnxruntime may repack constant matmul weights into its own
   * layout (default true). Repacking copies them: twice the weights' memory,
   * for a speed-up lost in the noise here (GPT-2 small, T = 128, 2 threads:
   * 877 ms per forward either way); without it, external weights stay
   * memory-mapped from the compiled file, shared by every session of the model.
   */
  readonly prepack?: boolean;
}

export type Feed =
  | { readonly type: 'int64'; readonly dims: readonly number[]; readonly data: BigInt64Array }
  | { readonly type: 'float32'; readonly dims: readonly number[]; readonly data: Float32Array };

export class GraphSession {
  private constructor(private readonly session: ort.InferenceSession) {}

  /** A session on a graph file, or on a graph's bytes when it needs no external data (nothing written to disk). */
  static async create(graph: string | Uint8Array, options: RuntimeOptions): Promise<GraphSession> {
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: options.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      enableCpuMemArena: true,
      enableMemPattern: true,
      logSeverityLevel: 3,
      ...(options.prepack === false ? { extra: { session: { disable_prepacking: '1' } } } : {}),
    };
    // Two overloads (a path, a buffer): the union does not match either, hence the branch.
    const session =
      typeof graph === 'string'
        ? await ort.InferenceSession.create(graph, sessionOptions)
        : await ort.InferenceSession.create(graph, sessionOptions);
    return new GraphSession(session);
  }

  /**
   * Runs the graph. Outputs named in `into` are written into those arrays (no
   * allocation: how a training loop reuses its parameter buffers); the rest
   * of `fetch` come back newly allocated.
   */
  async run(
    feeds: Readonly<Record<string, Feed>>,
    fetch: readonly string[],
    into: Readonly<Record<string, Tensor>> = {},
  ): Promise<Map<string, Tensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, f] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(f.type, f.data, f.dims);
    const fetches: Record<string, ort.Tensor | null> = {};
    for (const name of fetch) {
      const t = into[name];
      fetches[name] = t ? new ort.Tensor('float32', t.data, t.dims) : null;
    }
    const results = await this.session.run(ortFeeds, fetches);
    const out = new Map<string, Tensor>();
    for (const name of fetch) {
      const r = results[name];
      out.set(name, { dims: [...r.dims], data: r.data as Float32Array });
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
