/**
 * The lens and head requests of the engine process (protocol.ts, lensMethods)
 * for the editor's views: the lens grid over tokens of a document, one
 * token's attention, direct logit attribution at a token, and every head's
 * TextSpan directions. session.ts owns the documents and hands each request
 * the one it names; this module owns the lens engine's sessions (readout
 * graphs), the tuned lenses it has read, and a few windows' attention.
 *
 * Which window of a long document a request reads:
 * - the lens grid runs one window that ends just after the chosen tokens (so
 *   the last one's next token is known) with as much context before them as
 *   the model's context holds, BOS first;
 * - attention and logit attribution read the analysis window that gives the
 *   token its result (windows.ts), as the inspector's predictions do, so the
 *   views agree on what the model saw.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoupeError } from '../errors';
import { attentionPatterns } from '../lens/attentionPatterns';
import { directLogitAttribution } from '../lens/directLogitAttribution';
import { corpusWindows, headTextDirections, heldoutSampleWindows } from '../lens/headTextDirections';
import { LensGrid, ModelLenses } from '../lens/lenses';
import { LensReadout } from '../lens/readout';
import { checkBlock, checkHead } from '../lens/positions';
import { resolveToken } from '../lens/tokens';
import { TunedLens } from '../lens/tunedLens';
import { HookedModel } from '../model';
import { Token } from '../tokenizer';
import { EngineParams, EngineResult } from './protocol';
import { TokenWindow, windowOf } from './windows';

/** The most columns a lens grid has: a screenful of tokens, and the 256. */
export const MAX_LENS_COLUMNS = 256;
/** Most likely tokens per cell the grid may ask for. */
const MAX_TOP = 50;
/** Windows whose attention patterns are kept (per layer), so that moving the caret costs no run. */
const PATTERN_CACHE_SIZE = 8;

/** What the requests need of a tokenized document (session.ts's DocumentAnalysis has it). */
export interface LensDocument {
  readonly tokens: readonly Token[];
  /** 1 when tokens[0] is a BOS the tokenizer put before the text. */
  readonly prefix: number;
  readonly windows: readonly TokenWindow[];
}

export type ProgressSink = (message: string, fraction: number | null) => void;

export class LensRequests {
  private readonly lenses: ModelLenses;
  private readonly tuned = new Map<string, { lens: TunedLens; mtime: number }>();
  private readonly patterns = new Map<string, Float32Array>();

  constructor(
    readonly model: HookedModel,
    threads: number,
  ) {
    this.lenses = new ModelLenses(model, { threads });
  }

  /** The readout graph the lenses decode through, for next-token predictions without full logits. */
  get readout(): LensReadout {
    return this.lenses.readout;
  }

  async grid(doc: LensDocument, params: EngineParams<'lensGrid'>): Promise<EngineResult<'lensGrid'>> {
    const t0 = performance.now();
    const spec = this.model.spec;
    const count = doc.tokens.length;
    if (params.from >= params.to || params.to > count) {
      throw new LoupeError(
        `tokens ${params.from}..${params.to} are not a range of the document's ${count} tokens`,
      );
    }
    if (params.top < 1 || params.top > MAX_TOP)
      throw new LoupeError(`top must be 1..${MAX_TOP}, not ${params.top}`);
    const tuned = params.kind === 'tuned' ? this.tunedLens(params.tunedLens) : null;
    const { prefix } = doc;
    const room = spec.nCtx - prefix;
    const wanted = params.to - params.from;
    const columns = Math.min(wanted, MAX_LENS_COLUMNS, room);
    const from = params.from;
    const to = from + columns;

    // Body indices (after any BOS) of the window: it ends one token past the columns when the context allows.
    const bodyCount = count - prefix;
    const first = Math.max(0, from - prefix);
    const last = to - 1 - prefix; // may be -1 when only BOS is asked for
    let end = Math.min(bodyCount, last + 2);
    let start = Math.max(0, end - room);
    if (start > first) {
      start = first;
      end = Math.min(bodyCount, first + room);
    }
    const ids = [
      ...doc.tokens.slice(0, prefix).map((t) => t.id),
      ...doc.tokens.slice(prefix + start, prefix + end).map((t) => t.id),
    ];
    const inWindow = (p: number): number => (p < prefix ? p : prefix + (p - prefix - start));
    const positions = Array.from({ length: columns }, (_, i) => from + i);
    const options = { positions: positions.map(inWindow), topK: params.top };
    const grid =
      params.kind === 'logit'
        ? await this.lenses.logit(ids, options)
        : params.kind === 'tuned'
          ? await this.lenses.tuned(ids, tuned!, options)
          : await this.lenses.attentionFree(ids, params.variant, options);
    return {
      ...flatten(grid, columns, params.top),
      nLayers: spec.nLayers,
      positions: Int32Array.from(positions),
      truncated: wanted - columns,
      millis: performance.now() - t0,
    };
  }

  async attention(doc: LensDocument, params: EngineParams<'attention'>): Promise<EngineResult<'attention'>> {
    const spec = this.model.spec;
    checkBlock(spec, params.layer);
    if (params.head !== null) checkHead(spec.nHeads, params.head);
    const { ids, toDocument, query } = this.windowOf(doc, params.token);
    const key = `${params.layer}|${ids.join(',')}`;
    let pattern = this.patterns.get(key);
    if (pattern) this.patterns.delete(key);
    else [{ pattern }] = await attentionPatterns(this.model, ids, [params.layer]);
    this.patterns.set(key, pattern);
    while (this.patterns.size > PATTERN_CACHE_SIZE) this.patterns.delete(this.patterns.keys().next().value!);

    const T = ids.length;
    const H = spec.nHeads;
    const heads = params.head === null ? Array.from({ length: H }, (_, h) => h) : [params.head];
    const keys = query + 1;
    const weights = new Float32Array(heads.length * keys);
    heads.forEach((h, r) =>
      weights.set(pattern.subarray((h * T + query) * T, (h * T + query) * T + keys), r * keys),
    );
    return {
      layer: params.layer,
      head: params.head,
      token: params.token,
      keys: Int32Array.from({ length: keys }, (_, k) => toDocument(k)),
      weights,
      heads: heads.length,
    };
  }

  async logitAttribution(
    doc: LensDocument,
    params: EngineParams<'logitAttribution'>,
  ): Promise<EngineResult<'logitAttribution'>> {
    const { ids, query } = this.windowOf(doc, params.token);
    const target = params.target === null ? undefined : await resolveToken(this.model, params.target);
    const versus = params.versus === null ? null : await resolveToken(this.model, params.versus);
    const readout = this.lenses.readout;
    const a = await directLogitAttribution(
      this.model,
      ids,
      { position: query, target, versus },
      (id) => readout.tokenText(id),
      readout,
    );
    return {
      token: params.token,
      target: a.target,
      versus: a.versus,
      logit: a.logit,
      cappedLogit: a.cappedLogit,
      embed: a.embed,
      posEmbed: a.posEmbed,
      heads: a.heads.map((row) => [...row]),
      attnBias: [...a.attnBias],
      mlp: [...a.mlp],
      constant: a.constant,
      total: a.total,
    };
  }

  async headDirections(
    params: EngineParams<'headDirections'>,
    signal: AbortSignal,
    progress: ProgressSink,
  ): Promise<EngineResult<'headDirections'>> {
    const model = this.model;
    if (params.steps < 1) throw new LoupeError('steps must be at least 1');
    let windows: number[][];
    let source: string;
    if (params.corpus === null) {
      const sample = heldoutSampleWindows(model.checkpoint.dir);
      if (sample === null) {
        throw new LoupeError(
          `${path.basename(model.checkpoint.dir)} has no heldout-sample.json to read; choose a corpus (a folder, a .jsonl or a text file)`,
        );
      }
      windows = sample;
      source = `the held-out sample of ${path.basename(model.checkpoint.dir)}`;
    } else {
      progress(`Reading ${path.basename(params.corpus)}`, null);
      windows = await corpusWindows(model, params.corpus, {
        maxTokens: params.maxTokens ?? undefined,
        signal,
      });
      source = path.basename(params.corpus);
    }
    const r = await headTextDirections(model, {
      windows,
      steps: params.steps,
      signal,
      onProgress: (p) =>
        progress(
          p.stage === 'collect'
            ? `Reading ${source}: window ${p.done}/${p.total}`
            : `Choosing directions: head ${p.done}/${p.total}`,
          // Reading the text is most of the work.
          p.stage === 'collect' ? 0.9 * (p.done / p.total) : 0.9 + 0.1 * (p.done / p.total),
        ),
    });
    return {
      source,
      tokens: r.tokens,
      windows: r.windows,
      steps: r.steps,
      cached: r.cached,
      heads: r.heads.map((h) => ({
        layer: h.layer,
        head: h.head,
        explained: h.explained,
        directions: h.directions.map((d) => ({ text: d.text, fraction: d.fraction })),
      })),
    };
  }

  async dispose(): Promise<void> {
    this.patterns.clear();
    await this.lenses.dispose();
  }

  /** A tuned lens folder, read once (again when its parameters change on disk). */
  private tunedLens(dir: string | null): TunedLens {
    if (dir === null || dir.trim() === '') {
      throw new LoupeError(
        "no tuned lens is loaded: choose one with 'Loupe: Load Tuned Lens…' or train one with 'Loupe: Train Tuned Lens…'",
      );
    }
    const mtime = fs.statSync(path.join(dir, 'params.safetensors'), { throwIfNoEntry: false })?.mtimeMs ?? -1;
    const seen = this.tuned.get(dir);
    if (seen && seen.mtime === mtime) return seen.lens;
    const lens = TunedLens.load(dir);
    lens.checkFits(this.model);
    this.tuned.set(dir, { lens, mtime });
    return lens;
  }

  /**
   * The analysis window that gives document token `token` its result: its ids
   * (BOS first), the token's index in it, and each window index's document token.
   */
  private windowOf(
    doc: LensDocument,
    token: number,
  ): { ids: number[]; query: number; toDocument: (k: number) => number } {
    const { tokens, prefix, windows } = doc;
    if (token >= tokens.length) {
      throw new LoupeError(`token ${token} is past the end of the document (${tokens.length} tokens)`);
    }
    const head = tokens.slice(0, prefix).map((t) => t.id);
    if (windows.length === 0) return { ids: head, query: token, toDocument: (k) => k };
    const body = Math.max(0, token - prefix);
    const w = windows[windowOf(windows, body)];
    const ids = [...head, ...tokens.slice(prefix + w.start, prefix + w.end).map((t) => t.id)];
    return {
      ids,
      query: token < prefix ? token : prefix + body - w.start,
      toDocument: (k) => (k < prefix ? k : prefix + w.start + (k - prefix)),
    };
  }
}

/** A lens grid's cells as the protocol's flat arrays, with each token's text stored once. */
function flatten(
  grid: LensGrid,
  columns: number,
  k: number,
): Omit<EngineResult<'lensGrid'>, 'nLayers' | 'positions' | 'truncated' | 'millis'> {
  const words: string[] = [];
  const wordIndex = new Map<string, number>();
  const word = (text: string): number => {
    let i = wordIndex.get(text);
    if (i === undefined) {
      i = words.length;
      words.push(text);
      wordIndex.set(text, i);
    }
    return i;
  };
  const layers = grid.layers.length;
  const topWords = new Int32Array(layers * columns * k).fill(-1);
  const topProbs = new Float32Array(layers * columns * k);
  const nextWords = new Int32Array(columns).fill(-1);
  const nextProbs = new Float32Array(layers * columns);
  const nextRanks = new Int32Array(layers * columns);
  const entropy = new Float32Array(layers * columns);
  grid.cells.forEach((row, i) =>
    row.forEach((cell, j) => {
      const at = i * columns + j;
      cell.top.forEach((t, r) => {
        topWords[at * k + r] = word(t.text);
        topProbs[at * k + r] = t.prob;
      });
      if (cell.target) {
        nextWords[j] = word(cell.target.text);
        nextProbs[at] = cell.target.prob;
        nextRanks[at] = cell.target.rank;
      }
      entropy[at] = cell.entropy;
    }),
  );
  return {
    kind: grid.kind,
    variant: grid.variant,
    layers: [...grid.layers],
    top: k,
    words,
    topWords,
    topProbs,
    nextWords,
    nextProbs,
    nextRanks,
    entropy,
  };
}
