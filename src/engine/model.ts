/**
 * A loaded model: a checkpoint compiled to ONNX and run with any subset of its
 * TransformerLens hooks returned and any hooks edited. Graph variants are
 * built on first use and kept (on disk and as live sessions), so repeated runs
 * of the same kind pay nothing extra.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { Checkpoint, openCheckpoint } from './checkpoint';
import {
  CompileProgress,
  CompiledModel,
  NoticeSink,
  WEIGHTS_FILE,
  compileCheckpoint,
  defaultCacheDir,
} from './compile';
import { LoupeError } from './errors';
import { isPresent } from './inputFiles';
import { ModelSpec } from './families/spec';
import {
  GraphVariant,
  INPUT_IDS,
  LOGITS,
  LOGIT_ROWS,
  buildTransformerGraph,
  editInputNames,
} from './graph/transformer';
import { HookPoint, HookSelection, hookPoints, hookShape, selectHooks, tokenAxes } from './hooks';
import { Feed, GraphSession } from './runtime';
import { Tensor, cropBatchItem } from './tensor';
import { EncodeOptions, TextTokenizer, Token } from './tokenizer';
import { writeFileAtomic } from './safeWrite';

export interface OpenOptions {
  /** Where compiled models are cached; default LOUPE_CACHE_DIR or ~/.cache/loupe. */
  readonly cacheDir?: string;
  /** Intra-op threads for onnxruntime; default: the machine's cores. */
  readonly threads?: number;
  readonly onProgress?: (p: CompileProgress) => void;
  /** Where notices go (a damaged cache rebuilt); default stderr. */
  readonly onNotice?: NoticeSink;
}

/** x' = x · mul + add at one hook; each tensor broadcasts against the hook's batched shape. */
export interface HookEdit {
  readonly hook: string;
  readonly mul?: Tensor;
  readonly add?: Tensor;
}

export interface RunOptions {
  readonly hooks?: HookSelection;
  readonly edits?: readonly HookEdit[];
}

/** One text's results: logits [1, n, d_vocab] and each fetched hook with batch 1 and n positions. */
export interface RunResult {
  readonly logits: Tensor;
  readonly hooks: ReadonlyMap<string, Tensor>;
}

/** A batch's results before they are cut per text: [B, T_max, ...], right-padded. */
export interface PaddedRunResult {
  readonly lengths: readonly number[];
  readonly logits: Tensor;
  readonly hooks: ReadonlyMap<string, Tensor>;
}

const MAX_LIVE_SESSIONS = 4;
/**
 * Compiled weights past this size are not repacked by onnxruntime (see
 * RuntimeOptions.prepack): a 2.6B model's 10 GB would need 20 GB, while
 * mapped weights keep a session near the weights' own size.
 */
const PREPACK_MAX_WEIGHT_BYTES = 1 << 30;

export class HookedModel {
  private readonly sessions = new Map<
    string,
    Promise<{ session: GraphSession; hookOutputs: ReadonlyMap<string, string> }>
  >();
  readonly hookTable: readonly HookPoint[];
  /** Whether sessions over this model's weights let onnxruntime repack them (small models only). */
  readonly prepack: boolean;

  private constructor(
    readonly checkpoint: Checkpoint,
    readonly compiled: CompiledModel,
    readonly tokenizer: TextTokenizer | null,
    private readonly threads: number,
  ) {
    this.hookTable = hookPoints(checkpoint.spec);
    const bytes = [...compiled.weights.values()].reduce((a, w) => a + w.length, 0);
    this.prepack = bytes <= PREPACK_MAX_WEIGHT_BYTES;
  }

  static async open(dir: string, options: OpenOptions = {}): Promise<HookedModel> {
    const ckpt = openCheckpoint(dir);
    const compiled = compileCheckpoint(
      ckpt,
      options.cacheDir ?? defaultCacheDir(),
      options.onProgress,
      options.onNotice,
    );
    const hasTokenizer = isPresent(path.join(ckpt.dir, 'tokenizer.json'));
    const tokenizer = hasTokenizer
      ? await TextTokenizer.load(ckpt.dir, ckpt.spec.bosTokenId, ckpt.spec.dVocab)
      : null;
    const threads = options.threads ?? Math.max(1, os.availableParallelism());
    return new HookedModel(ckpt, compiled, tokenizer, threads);
  }

  get spec(): ModelSpec {
    return this.checkpoint.spec;
  }

  /**
   * The BOS id windows of text start with; null for none. With a tokenizer it is the one `tokenize`
   * prepends (null for tokenizers without BOS, such as Qwen's, whatever the config's `bos_token_id`);
   * the config's only for a checkpoint without a tokenizer.
   */
  get bosTokenId(): number | null {
    return this.tokenizer ? this.tokenizer.bosTokenId : this.spec.bosTokenId;
  }

  /** Tokens of a text exactly as `run` feeds them, with UTF-16 spans. */
  async tokenize(text: string, options?: EncodeOptions): Promise<Token[]> {
    if (!this.tokenizer)
      throw new LoupeError(`${this.checkpoint.dir}: no tokenizer.json, so text cannot be tokenized`);
    return this.tokenizer.encode(text, options);
  }

  /** Runs several token sequences as one right-padded batch; returns each one's results at its own length. */
  async run(batch: readonly (readonly number[])[], options: RunOptions = {}): Promise<RunResult[]> {
    const padded = await this.runPadded(batch, options);
    const hooks = [...padded.hooks.keys()].map((name) => this.hookByName(name));
    return padded.lengths.map((n, b) => ({
      logits: cropBatchItem(padded.logits, b, [1], n),
      hooks: new Map(
        hooks.map((h) => [h.name, cropBatchItem(padded.hooks.get(h.name)!, b, tokenAxes(h), n)]),
      ),
    }));
  }

  /** The batched form of `run`, for callers that stream many texts and handle padding themselves. */
  async runPadded(batch: readonly (readonly number[])[], options: RunOptions = {}): Promise<PaddedRunResult> {
    const { lengths, outputs, hooks } = await this.execute(batch, options, true);
    return { lengths, logits: outputs.get(LOGITS)!, hooks };
  }

  /**
   * `runPadded` with the logits of one position per text only, [B, 1, d_vocab]
   * (item b's at positions[b]): what a view that reads one prediction per
   * text needs, without the [B, T, d_vocab] that a 256k vocabulary makes large.
   */
  async runAt(
    batch: readonly (readonly number[])[],
    positions: readonly number[],
    options: RunOptions = {},
  ): Promise<PaddedRunResult> {
    if (positions.length !== batch.length) {
      throw new LoupeError(`${batch.length} texts but ${positions.length} positions to read logits at`);
    }
    positions.forEach((p, b) => {
      if (!Number.isInteger(p) || p < 0 || p >= batch[b].length) {
        throw new LoupeError(`position ${p} is outside text ${b}'s ${batch[b].length} tokens`);
      }
    });
    const { lengths, outputs, hooks } = await this.execute(batch, options, positions);
    return { lengths, logits: outputs.get(LOGITS)!, hooks };
  }

  /**
   * Hooks only, right-padded as in `runPadded`: the graph stops at the last
   * layer the hooks need and computes no logits, so reading an early layer
   * (an SAE's hook) skips the later blocks and the unembedding.
   */
  async runHooksPadded(
    batch: readonly (readonly number[])[],
    hooks: readonly string[],
  ): Promise<{ readonly lengths: readonly number[]; readonly hooks: ReadonlyMap<string, Tensor> }> {
    if (hooks.length === 0) throw new LoupeError('runHooksPadded needs at least one hook to return');
    const { lengths, hooks: values } = await this.execute(batch, { hooks }, false);
    return { lengths, hooks: values };
  }

  /** `runHooksPadded` with edits: no logits, and the graph stops at the last layer its hooks and edits need. */
  async runEditedHooksPadded(
    batch: readonly (readonly number[])[],
    hooks: readonly string[],
    edits: readonly HookEdit[],
  ): Promise<{ readonly lengths: readonly number[]; readonly hooks: ReadonlyMap<string, Tensor> }> {
    if (hooks.length === 0) throw new LoupeError('runEditedHooksPadded needs at least one hook to return');
    const { lengths, hooks: values } = await this.execute(batch, { hooks, edits }, false);
    return { lengths, hooks: values };
  }

  /** `logits`: every position's, none, or (a list) one position per text. */
  private async execute(
    batch: readonly (readonly number[])[],
    options: RunOptions,
    logits: boolean | readonly number[],
  ): Promise<{ lengths: number[]; outputs: Map<string, Tensor>; hooks: Map<string, Tensor> }> {
    const spec = this.spec;
    if (batch.length === 0) throw new LoupeError('nothing to run: the batch is empty');
    const lengths = batch.map((ids) => ids.length);
    const T = Math.max(...lengths);
    if (Math.min(...lengths) === 0) throw new LoupeError('cannot run an empty token sequence');
    if (T > spec.nCtx) {
      throw new LoupeError(
        `${T} tokens exceed the model's context of ${spec.nCtx}; split the text or select less`,
      );
    }
    const ids = new BigInt64Array(batch.length * T);
    batch.forEach((seq, b) =>
      seq.forEach((id, t) => {
        if (!Number.isInteger(id) || id < 0 || id >= spec.dVocab) {
          throw new LoupeError(`token id ${id} is outside the vocabulary (0..${spec.dVocab - 1})`);
        }
        ids[b * T + t] = BigInt(id);
      }),
    );
    // Padding repeats token 0; causal attention keeps it from reaching real positions.
    const hooks = selectHooks(spec, options.hooks ?? 'none');
    const edits = options.edits ?? [];
    const editHooks = edits.map((e) => this.hookByName(e.hook));
    if (new Set(edits.map((e) => e.hook)).size !== edits.length) {
      throw new LoupeError('each hook takes at most one edit per run; combine them into one mul and add');
    }
    const feeds: Record<string, Feed> = {
      [INPUT_IDS]: { type: 'int64', dims: [batch.length, T], data: ids },
    };
    const rows = typeof logits === 'boolean' ? null : logits;
    const mode: GraphVariant['logits'] = typeof logits === 'boolean' ? logits : 'rows';
    if (rows) {
      feeds[LOGIT_ROWS] = {
        type: 'int64',
        dims: [rows.length],
        data: BigInt64Array.from(rows, (p, b) => BigInt(b * T + p)),
      };
    }
    edits.forEach((e, i) => {
      const shape = hookShape(spec, editHooks[i], batch.length, T);
      const names = editInputNames(e.hook);
      feeds[names.mul] = editFeed(e.hook, 'mul', e.mul, shape, 1);
      feeds[names.add] = editFeed(e.hook, 'add', e.add, shape, 0);
    });
    const { session, hookOutputs } = await this.session(
      hooks.map((h) => h.name),
      edits.map((e) => e.hook),
      mode,
    );
    const fetch = [
      ...(mode !== false ? [LOGITS] : []),
      ...new Set(hooks.map((h) => hookOutputs.get(h.name)!)),
    ];
    const outputs = await session.run(feeds, fetch);
    if (rows) {
      const l = outputs.get(LOGITS)!;
      outputs.set(LOGITS, { dims: [rows.length, 1, spec.dVocab], data: l.data });
    }
    return {
      lengths,
      outputs,
      hooks: new Map(hooks.map((h) => [h.name, outputs.get(hookOutputs.get(h.name)!)!])),
    };
  }

  hookByName(name: string): HookPoint {
    const h = this.hookTable.find((x) => x.name === name);
    if (!h) return selectHooks(this.spec, [name])[0]; // throws the helpful error
    return h;
  }

  private session(
    outputs: readonly string[],
    edits: readonly string[],
    logits: GraphVariant['logits'],
  ): Promise<{ session: GraphSession; hookOutputs: ReadonlyMap<string, string> }> {
    const mode = logits === true ? '' : logits === 'rows' ? '|logit-rows' : '|no-logits';
    const key = `o:${[...outputs].sort().join(',')}|e:${[...edits].sort().join(',')}${mode}`;
    const cached = this.sessions.get(key);
    if (cached) {
      this.sessions.delete(key); // re-insert: the map's order is least recently used first
      this.sessions.set(key, cached);
      return cached;
    }
    const made = (async () => {
      const built = buildTransformerGraph(this.spec, this.compiled.weights, WEIGHTS_FILE, {
        outputs: new Set(outputs),
        edits: new Set(edits),
        logits,
      });
      const file = path.join(this.compiled.dir, `graph-${shortHash(key)}.onnx`);
      // Graphs are kilobytes: always rewrite, so a graph never outlives the code that built it.
      writeFileAtomic(file, built.bytes);
      const session = await GraphSession.create(file, { threads: this.threads, prepack: this.prepack });
      return { session, hookOutputs: built.hookOutputs };
    })();
    made.catch(() => this.sessions.delete(key));
    this.sessions.set(key, made);
    while (this.sessions.size > MAX_LIVE_SESSIONS) {
      const [oldKey, oldest] = this.sessions.entries().next().value as [string, typeof made];
      this.sessions.delete(oldKey);
      void oldest.then((s) => s.session.release()).catch(() => undefined);
    }
    return made;
  }

  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((p) => p.then((s) => s.session.release()).catch(() => undefined)));
  }
}

function editFeed(
  hook: string,
  which: 'mul' | 'add',
  t: Tensor | undefined,
  shape: number[],
  identity: number,
): Feed {
  if (!t) return { type: 'float32', dims: [1], data: new Float32Array([identity]) };
  const dims = t.dims;
  // Numpy broadcasting, aligned at the right; the edit must not grow the hook's shape.
  const ok =
    dims.length <= shape.length &&
    dims.every((d, i) => {
      const target = shape[shape.length - dims.length + i];
      return d === 1 || d === target;
    });
  if (!ok) {
    throw new LoupeError(
      `edit '${which}' at ${hook} has shape [${dims.join(', ')}], which does not broadcast to the hook's [${shape.join(', ')}]`,
    );
  }
  return { type: 'float32', dims, data: t.data };
}

function shortHash(s: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < s.length; i++) {
    h1 = Math.imul(h1 ^ s.charCodeAt(i), 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ s.charCodeAt(i), 0x5bd1e995) >>> 0;
  }
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}
