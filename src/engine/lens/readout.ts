/**
 * Reads rows of the residual stream out as next-token distributions (see
 * readoutGraph.ts), for every lens: plain (logit lens, attention-free
 * projection) or through a tuned-lens translator. Owns its onnxruntime
 * sessions and a cache of token display texts; dispose() frees them.
 */
import * as path from 'node:path';
import { WEIGHTS_FILE } from '../compile';
import { HookedModel } from '../model';
import { Feed, GraphSession } from '../runtime';
import { READOUT_INPUTS, buildReadoutGraph } from './readoutGraph';
import { writeFileAtomic } from '../safeWrite';

export interface TokenProb {
  readonly id: number;
  /** The token as a person reads it (see TextTokenizer.displayText). */
  readonly text: string;
  readonly prob: number;
}

export interface RankedToken extends TokenProb {
  /** 1 for the most likely token. */
  readonly rank: number;
}

export interface ReadoutRow {
  /** The k most likely tokens, most likely first. */
  readonly top: readonly TokenProb[];
  /** The row's chosen token (the one that actually comes next), or null when it has none. */
  readonly target: RankedToken | null;
  /** Entropy of the distribution, in nats. */
  readonly entropy: number;
}

/** A tuned-lens translator for one layer: h + h·weightᵀ + bias, weight [d_out, d_in]. */
export interface Translator {
  readonly weight: Float32Array;
  readonly bias: Float32Array;
}

/** Rows per graph run: bounds the [rows × d_vocab] intermediates to about 64 MB. */
const MAX_LOGIT_ELEMENTS = 1 << 24;

export class LensReadout {
  private readonly sessions = new Map<string, Promise<GraphSession>>();
  private readonly texts = new Map<number, string>();

  constructor(
    readonly model: HookedModel,
    private readonly threads = 0,
  ) {}

  /**
   * Decodes `rows` residual vectors ([rows × d_model]); `targets[i]` is the
   * token whose probability and rank row i reports (null: none).
   */
  async read(
    resid: Float32Array,
    targets: readonly (number | null)[],
    k: number,
    translator?: Translator,
  ): Promise<ReadoutRow[]> {
    const d = this.model.spec.dModel;
    const V = this.model.spec.dVocab;
    const n = resid.length / d;
    if (targets.length !== n) throw new Error(`readout: ${n} rows but ${targets.length} targets`);
    const kk = Math.max(1, Math.min(k, V));
    const session = await this.session(translator !== undefined);
    const chunk = Math.max(1, Math.floor(MAX_LOGIT_ELEMENTS / V));
    const out: ReadoutRow[] = [];
    for (let r0 = 0; r0 < n; r0 += chunk) {
      const rows = Math.min(chunk, n - r0);
      const feeds: Record<string, Feed> = {
        [READOUT_INPUTS.resid]: {
          type: 'float32',
          dims: [rows, d],
          data: resid.subarray(r0 * d, (r0 + rows) * d),
        },
        [READOUT_INPUTS.targets]: {
          type: 'int64',
          dims: [rows],
          data: BigInt64Array.from(targets.slice(r0, r0 + rows), (t) => BigInt(t ?? 0)),
        },
        [READOUT_INPUTS.k]: { type: 'int64', dims: [1], data: BigInt64Array.from([BigInt(kk)]) },
      };
      if (translator) {
        feeds[READOUT_INPUTS.translatorWeight] = { type: 'float32', dims: [d, d], data: translator.weight };
        feeds[READOUT_INPUTS.translatorBias] = { type: 'float32', dims: [d], data: translator.bias };
      }
      const res = await session.run(feeds, [
        'top_logprobs',
        'top_ids',
        'target_logprobs',
        'target_ranks',
        'entropy',
      ]);
      const topV = res.get('top_logprobs')!.data;
      const topI = res.get('top_ids')!.data;
      const tV = res.get('target_logprobs')!.data;
      const tR = res.get('target_ranks')!.data;
      const ent = res.get('entropy')!.data;
      for (let r = 0; r < rows; r++) {
        const top: TokenProb[] = [];
        for (let j = 0; j < kk; j++) {
          const id = topI[r * kk + j];
          top.push({ id, text: await this.tokenText(id), prob: Math.exp(topV[r * kk + j]) });
        }
        const t = targets[r0 + r];
        const target =
          t === null ? null : { id: t, text: await this.tokenText(t), prob: Math.exp(tV[r]), rank: tR[r] };
        out.push({ top, target, entropy: ent[r] });
      }
    }
    return out;
  }

  /** A token's display text, cached (the same few tokens fill a lens grid). */
  async tokenText(id: number): Promise<string> {
    let text = this.texts.get(id);
    if (text === undefined) {
      text = this.model.tokenizer ? await this.model.tokenizer.displayText(id) : `<${id}>`;
      this.texts.set(id, text);
    }
    return text;
  }

  private session(translated: boolean): Promise<GraphSession> {
    const key = translated ? 'tuned' : 'plain';
    let s = this.sessions.get(key);
    if (!s) {
      const model = this.model;
      const bytes = buildReadoutGraph(model.spec, model.compiled.weights, WEIGHTS_FILE, translated);
      const file = path.join(model.compiled.dir, `graph-lens-readout-${key}.onnx`);
      // Graphs are kilobytes: always rewrite, so a graph never outlives the code that built it.
      writeFileAtomic(file, bytes);
      s = GraphSession.create(file, { threads: this.threads, prepack: model.prepack });
      s.catch(() => this.sessions.delete(key));
      this.sessions.set(key, s);
    }
    return s;
  }

  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((p) => p.then((s) => s.release()).catch(() => undefined)));
  }
}
