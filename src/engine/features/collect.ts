/**
 * The feature pass: one streaming pass of a corpus through the model and the
 * SAE that gathers, for every feature at once, what its dashboard needs:
 * activation counts, sums, maxima and a log-binned histogram; the top-k
 * activating contexts (at most one per context window: the window's largest
 * activation of that feature); uniform samples from bands between 0 and the
 * maximum; and, for the automatic labels, how often each token occurs in the
 * whole pass.
 *
 * Windows are cut as SAE training cuts them (BOS + up to contextSize − 1
 * tokens of one document, see sae/activations.ts), but the pass keeps each
 * window's token ids and character spans, and its document's text, so a
 * context can be shown and opened in an editor. BOS positions are left out of
 * every statistic and every context.
 *
 * Memory is fixed by the feature count: per feature k top slots and
 * bands × perBand sample slots of (left + 1 + right) tokens, plus the
 * histogram. The text of a document is kept only while some slot refers to it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CorpusDocument, readCorpus } from '../corpus';
import { CancelledError, LoupeError } from '../errors';
import { HookedModel } from '../model';
import { seededUniform } from '../random';
import { Sae } from '../sae/sae';
import { attachSae } from '../sae/splice';
import { ContextSlots, ScanWindow } from './contextSlots';
import { HIST_BINS, histBin } from './histogram';
import { BandSamples, TopContexts } from './samplers';

export interface CollectOptions {
  /** Tokens per window including BOS; default the SAE's context_size or 128, at most the model's context. */
  readonly contextSize?: number;
  /** Stop after this many tokens (non-BOS positions); default 100,000. */
  readonly maxTokens?: number;
  /** Top contexts kept per feature; default 20. */
  readonly topK?: number;
  /** Bands of equal width between 0 and the maximum; default 5. */
  readonly bands?: number;
  /** Samples kept per band; default 5. */
  readonly samplesPerBand?: number;
  /** Tokens shown left and right of the focus token; default 12 and 4. */
  readonly left?: number;
  readonly right?: number;
  /** Windows per forward pass; default 16. */
  readonly windowsPerRun?: number;
  /** Seed of the band sampling; default 0. */
  readonly seed?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: { tokens: number; maxTokens: number; documents: number }) => void;
}

export interface PassDocument {
  /** Relative to the corpus (see FeatureContext.source). */
  readonly source: string;
  /** Null once no kept context refers to it. */
  text: string | null;
}

/** Everything the pass gathered; raw arrays, indexed by feature. */
export interface FeatureCollection {
  readonly dSae: number;
  readonly contextSize: number;
  readonly tokens: number;
  readonly documents: PassDocument[];
  readonly fires: Float64Array;
  readonly sums: Float64Array;
  readonly maxAct: Float32Array;
  /** [dSae × HIST_BINS] counts. */
  readonly histograms: Uint32Array;
  /** Occurrences of each token id in the pass (non-BOS positions), [d_vocab]. */
  readonly tokenCounts: Float64Array;
  readonly top: TopContexts;
  readonly topSlots: ContextSlots;
  readonly samples: BandSamples;
  readonly sampleSlots: ContextSlots;
  readonly seconds: number;
}

/** How often (in batches) the pass drops the texts of documents no kept context refers to. */
const PRUNE_EVERY = 32;

export async function collectFeatures(
  model: HookedModel,
  sae: Sae,
  corpus: string,
  options: CollectOptions = {},
): Promise<FeatureCollection> {
  const t0 = performance.now();
  const att = attachSae(model, sae);
  const hook = att.hook.name;
  const { dIn, dSae } = sae.config;
  const bos = model.tokenizer?.bosTokenId ?? null;
  if (bos === null) throw new LoupeError('the model has no BOS token; feature contexts start with one');
  const ctx = Math.min(options.contextSize ?? sae.config.contextSize ?? 128, model.spec.nCtx);
  if (ctx < 2)
    throw new LoupeError(`context size ${ctx} is too small: windows hold BOS and at least one token`);
  const maxTokens = options.maxTokens ?? 100_000;
  const k = options.topK ?? 20;
  const left = options.left ?? 12;
  const right = options.right ?? 4;
  const perRun = options.windowsPerRun ?? 16;

  const fires = new Float64Array(dSae);
  const sums = new Float64Array(dSae);
  const histograms = new Uint32Array(dSae * HIST_BINS);
  const tokenCounts = new Float64Array(model.spec.dVocab);
  const top = new TopContexts(dSae, k);
  const topSlots = new ContextSlots(dSae * k, left, right);
  const samples = new BandSamples(
    dSae,
    options.bands ?? 5,
    options.samplesPerBand ?? 5,
    seededUniform(options.seed ?? 0),
  );
  const sampleSlots = new ContextSlots(dSae * samples.perFeature, left, right);
  const documents: PassDocument[] = [];
  // Per-window best activation of each feature, reset after each window.
  const winBest = new Float32Array(dSae);
  const winPos = new Int32Array(dSae);
  const touched = new Int32Array(dSae);

  let tokens = 0;
  let queued = 0;
  let batches = 0;
  let pending: ScanWindow[] = [];

  const scan = (windows: ScanWindow[], acts: Float32Array): void => {
    for (const w of windows) {
      let nTouched = 0;
      for (let p = 1; p < w.ids.length; p++) {
        tokenCounts[w.ids[p]]++;
        const base = (w.firstRow + p - 1) * dSae;
        for (let f = 0; f < dSae; f++) {
          const a = acts[base + f];
          if (!(a > 0)) continue;
          fires[f]++;
          sums[f] += a;
          histograms[f * HIST_BINS + histBin(a)]++;
          if (a > winBest[f]) {
            if (winBest[f] === 0) touched[nTouched++] = f;
            winBest[f] = a;
            winPos[f] = p;
          }
          const s = samples.offer(f, a);
          if (s >= 0) sampleSlots.capture(s, w, p, f, acts, dSae);
        }
      }
      for (let i = 0; i < nTouched; i++) {
        const f = touched[i];
        const s = top.offer(f, winBest[f]);
        if (s >= 0) topSlots.capture(s, w, winPos[f], f, acts, dSae);
        winBest[f] = 0;
      }
      tokens += w.ids.length - 1;
    }
  };

  // Forward + encode of one batch, while the previous batch is scanned (onnxruntime runs off the main thread).
  const compute = async (windows: ScanWindow[]): Promise<{ windows: ScanWindow[]; acts: Float32Array }> => {
    // Hooks only: the graph stops at the SAE's layer and computes no logits.
    const padded = await model.runHooksPadded(
      windows.map((w) => Array.from(w.ids)),
      [hook],
    );
    const x = padded.hooks.get(hook)!;
    const T = x.dims[1];
    // Only real, non-BOS positions go through the SAE.
    const rows = windows.reduce((a, w) => a + w.ids.length - 1, 0);
    const input = new Float32Array(rows * dIn);
    windows.forEach((w, b) => {
      const from = (b * T + 1) * dIn;
      input.set(x.data.subarray(from, from + (w.ids.length - 1) * dIn), w.firstRow * dIn);
    });
    const acts = await sae.encode({ dims: [rows, dIn], data: input }, { center: att.center });
    return { windows, acts: acts.data };
  };
  let inflight: Promise<{ windows: ScanWindow[]; acts: Float32Array }> | null = null;
  const drain = async (): Promise<void> => {
    if (!inflight) return;
    const done = await inflight;
    inflight = null;
    scan(done.windows, done.acts);
    options.onProgress?.({ tokens, maxTokens, documents: documents.length });
  };
  const submit = async (): Promise<void> => {
    if (options.signal?.aborted) throw new CancelledError();
    const next = compute(pending);
    next.catch(() => undefined); // awaited below; this only keeps an early failure from counting as unhandled
    const firstDoc = pending[0].doc;
    pending = [];
    await drain();
    inflight = next;
    if (++batches % PRUNE_EVERY === 0) pruneTexts(documents, firstDoc, topSlots, sampleSlots);
  };

  const root = path.resolve(corpus);
  const rootDir = isFolderSource(root) ? root : path.dirname(root);
  let rowsQueued = 0;
  for await (const doc of readCorpus(corpus)) {
    if (queued >= maxTokens) break;
    if (options.signal?.aborted) throw new CancelledError();
    const docTokens = await model.tokenize(doc.text, { prependBos: false });
    if (docTokens.length === 0) continue;
    const index = documents.length;
    documents.push({ source: relativeSource(doc, rootDir), text: doc.text });
    for (let i = 0; i < docTokens.length && queued < maxTokens; i += ctx - 1) {
      const body = docTokens.slice(i, Math.min(i + ctx - 1, i + maxTokens - queued));
      const n = body.length + 1;
      const ids = new Int32Array(n);
      const starts = new Int32Array(n);
      const ends = new Int32Array(n);
      ids[0] = bos;
      body.forEach((t, j) => {
        ids[j + 1] = t.id;
        starts[j + 1] = t.start;
        ends[j + 1] = t.end;
      });
      pending.push({ doc: index, ids, starts, ends, firstRow: rowsQueued });
      rowsQueued += body.length;
      queued += body.length;
      if (pending.length === perRun) {
        await submit();
        rowsQueued = 0;
      }
    }
  }
  if (pending.length > 0) await submit();
  await drain();
  if (tokens === 0) throw new LoupeError(`${corpus}: the corpus has no tokens to read`);
  pruneTexts(documents, documents.length, topSlots, sampleSlots);
  return {
    dSae,
    contextSize: ctx,
    tokens,
    documents,
    fires,
    sums,
    maxAct: samples.max,
    histograms,
    tokenCounts,
    top,
    topSlots,
    samples,
    sampleSlots,
    seconds: (performance.now() - t0) / 1000,
  };
}

function isFolderSource(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** A document's name relative to the corpus root, with '/' separators (so a database moves between machines). */
function relativeSource(doc: CorpusDocument, rootDir: string): string {
  const m = /^(.*\.jsonl)(:\d+)$/.exec(doc.source);
  const file = m ? m[1] : doc.source;
  const rel = path.relative(rootDir, path.resolve(file)).split(path.sep).join('/');
  return m ? `${rel}${m[2]}` : rel;
}

/** Drops the texts no slot refers to, except those from `keepFrom` on (documents with windows still to scan). */
function pruneTexts(docs: PassDocument[], keepFrom: number, ...slots: ContextSlots[]): void {
  const used = new Uint8Array(docs.length);
  for (let i = Math.max(0, keepFrom); i < docs.length; i++) used[i] = 1;
  for (const s of slots) for (const d of s.docs) if (d >= 0) used[d] = 1;
  docs.forEach((d, i) => {
    if (!used[i]) d.text = null;
  });
}
