/**
 * Builds an SAE's feature database end to end: the corpus pass
 * (collect.ts), logit effects and cosine neighbours of the decoder directions
 * (decoder.ts), automatic labels (labels.ts), clusters and the 2-D map
 * (clusters.ts), then every dashboard written to disk (database.ts).
 */
import * as path from 'node:path';
import { HookedModel } from '../model';
import { Sae } from '../sae/sae';
import { CollectOptions, FeatureCollection, collectFeatures } from './collect';
import { clusterFeatures, mapFeatures } from './clusters';
import { ContextSlots } from './contextSlots';
import { FEATURE_DB_DIR, FeatureIndexColumns, writeFeatureDatabase } from './database';
import { checkOutputFolder } from '../safeWrite';
import { LogitEffectsResult, TopKRows, decoderRows, logitEffects, normalizeRows, topCosine } from './decoder';
import { HIST_BINS, finishHistogram, massBetween } from './histogram';
import { LabelContext, labelCluster, labelFeature } from './labels';
import {
  FEATURE_DB_SCHEMA,
  FeatureCluster,
  FeatureContext,
  FeatureDashboard,
  FeatureDbMeta,
  FeatureLabel,
  LogitEffects,
  MapPoint,
  TokenValue,
} from './types';

export type BuildStage = 'pass' | 'logits' | 'similar' | 'labels' | 'clusters' | 'map' | 'write';

export interface BuildProgress {
  readonly stage: BuildStage;
  readonly done: number;
  readonly total: number;
}

export interface BuildOptions extends Omit<CollectOptions, 'onProgress'> {
  /** Where to write; default `features/` in the SAE's folder. */
  readonly out?: string;
  /** The corpus path to record in the database (default: as given). */
  readonly corpusLabel?: string;
  /** Promoted and suppressed tokens per feature; default 10. */
  readonly logitTokens?: number;
  /** Similar features per feature; default 10. */
  readonly similar?: number;
  /** Number of clusters; default √(live / 2), between 2 and 64. */
  readonly clusters?: number;
  /** Most features clustered directly (see clusters.ts); default 600. */
  readonly clusterSample?: number;
  /** UMAP epochs; default 200. */
  readonly mapEpochs?: number;
  readonly threads?: number;
  readonly onProgress?: (p: BuildProgress) => void;
}

export interface BuildResult {
  readonly dir: string;
  readonly meta: FeatureDbMeta;
}

export async function buildFeatureDatabase(
  model: HookedModel,
  sae: Sae,
  corpus: string,
  options: BuildOptions = {},
): Promise<BuildResult> {
  const dir = path.resolve(options.out ?? path.join(sae.dir ?? '.', FEATURE_DB_DIR));
  checkOutputFolder(dir, 'feature-database'); // before the long pass, not after it
  const seconds: Record<string, number> = {};
  const timed = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await work();
    seconds[name] = round((performance.now() - t0) / 1000);
    return r;
  };
  const progress = options.onProgress;
  const { dSae, dIn } = sae.config;
  const graphDir = model.compiled.dir;
  const chunk = { threads: options.threads, signal: options.signal };

  const col = await timed('pass', () =>
    collectFeatures(model, sae, corpus, {
      ...options,
      onProgress: (p) => progress?.({ stage: 'pass', done: p.tokens, total: p.maxTokens }),
    }),
  );

  const logits = await timed('logits', () =>
    logitEffects(model, sae, options.logitTokens ?? 10, {
      ...chunk,
      onProgress: (done, total) => progress?.({ stage: 'logits', done, total }),
    }),
  );
  const unit = normalizeRows(decoderRows(sae), dIn);
  const similar = await timed('similar', () =>
    topCosine(unit, unit, dIn, options.similar ?? 10, graphDir, {
      ...chunk,
      aIndex: Int32Array.from({ length: dSae }, (_, i) => i),
      onProgress: (done, total) => progress?.({ stage: 'similar', done, total }),
    }),
  );

  const t0 = performance.now();
  const baseline = { counts: col.tokenCounts, total: col.tokens };
  const labels: FeatureLabel[] = [];
  const searchTokens: string[][] = [];
  for (let f = 0; f < dSae; f++) {
    const top = col.top.sorted(f).map((e) => labelContext(col, col.topSlots, e.slot));
    const label = labelFeature(top, baseline);
    labels.push(label);
    const tokens = new Set(label.tokens.map((t) => t.text.trim()).filter((t) => t.length > 0));
    for (const c of top) {
      if (tokens.size >= 8) break;
      const t = c.texts[c.focus].trim();
      if (t.length > 0) tokens.add(t);
    }
    searchTokens.push([...tokens]);
    if (f % 256 === 255) progress?.({ stage: 'labels', done: f + 1, total: dSae });
  }
  seconds.labels = round((performance.now() - t0) / 1000);

  const live = Int32Array.from(Array.from({ length: dSae }, (_, i) => i).filter((i) => col.fires[i] > 0));
  progress?.({ stage: 'clusters', done: 0, total: 1 });
  const clustering = await timed('clusters', () =>
    clusterFeatures(unit, dIn, live, graphDir, {
      ...chunk,
      clusters: options.clusters,
      sample: options.clusterSample,
      seed: options.seed,
    }),
  );
  progress?.({ stage: 'clusters', done: 1, total: 1 });
  const coords = await timed('map', () =>
    mapFeatures(unit, dIn, live, graphDir, {
      ...chunk,
      epochs: options.mapEpochs,
      seed: options.seed,
      onProgress: (done, total) => progress?.({ stage: 'map', done, total }),
    }),
  );
  const clusters: FeatureCluster[] = clustering.clusters.map((members, id) => ({
    id,
    label: labelCluster(members.map((f) => labels[f])),
    size: members.length,
    members: [...members].sort((a, b) => col.fires[b] - col.fires[a] || a - b),
  }));
  const map: MapPoint[] = Array.from(live, (f, i) => ({
    index: f,
    x: round(coords[2 * i]),
    y: round(coords[2 * i + 1]),
    cluster: clustering.assignment[f],
  }));

  const tokenText = await decodeTokens(model, logits);
  const features: FeatureIndexColumns = {
    label: labels.map((l) => l.text),
    dead: Array.from(col.fires, (n) => n === 0),
    density: Array.from(col.fires, (n) => round(n / col.tokens)),
    maxAct: Array.from(col.maxAct, round),
    meanActive: Array.from(col.fires, (n, f) => (n > 0 ? round(col.sums[f] / n) : 0)),
    cluster: Array.from(clustering.assignment),
    tokens: searchTokens,
  };
  const meta: FeatureDbMeta = {
    schema: FEATURE_DB_SCHEMA,
    createdAt: new Date().toISOString(),
    model: sae.config.modelName ?? path.basename(model.checkpoint.dir),
    hook: sae.config.hookName,
    dSae,
    dIn,
    corpus: options.corpusLabel ?? corpus,
    tokens: col.tokens,
    documents: col.documents.length,
    contextSize: col.contextSize,
    liveFeatures: live.length,
    options: {
      topK: col.top.k,
      bands: col.samples.bands,
      samplesPerBand: col.samples.perBand,
      left: col.topSlots.left,
      right: col.topSlots.right,
      logitTokens: typeof logits === 'string' ? 0 : logits.promoted.k,
      similar: similar.k,
      clusters: clusters.length,
      seed: options.seed ?? 0,
    },
    logitsNote: typeof logits === 'string' ? logits : null,
    clusterNote: clustering.note,
    seconds,
  };
  const tw = performance.now();
  writeFeatureDatabase(dir, {
    meta,
    features,
    clusters,
    map,
    dashboard: (f) => {
      if (f % 256 === 255) progress?.({ stage: 'write', done: f + 1, total: dSae });
      return dashboardOf(col, f, labels[f], logits, tokenText, similar, clustering.assignment[f]);
    },
  });
  seconds.write = round((performance.now() - tw) / 1000);
  return { dir, meta };
}

function dashboardOf(
  col: FeatureCollection,
  f: number,
  label: FeatureLabel,
  logits: LogitEffectsResult | string,
  tokenText: Map<number, string>,
  similar: TopKRows,
  cluster: number,
): FeatureDashboard {
  const fires = col.fires[f];
  const max = col.maxAct[f];
  const histogram = finishHistogram(col.histograms.subarray(f * HIST_BINS, (f + 1) * HIST_BINS));
  const B = col.samples.bands;
  const bands = [];
  if (fires > 0 && histogram) {
    for (let j = B - 1; j >= 0; j--) {
      const lo = (j * max) / B;
      const hi = ((j + 1) * max) / B;
      bands.push({
        lo: round(lo),
        hi: round(hi),
        fraction: round(massBetween(histogram, lo, j === B - 1 ? Infinity : hi, max)),
        samples: col.samples
          .band(f, j)
          .map((e) => contextOf(col, col.sampleSlots, e.slot, e.act))
          .filter((c): c is FeatureContext => c !== null),
      });
    }
  }
  let logitEffects: LogitEffects | null = null;
  if (typeof logits !== 'string') {
    const rows = (r: TopKRows): TokenValue[] =>
      Array.from({ length: r.k }, (_, j) => {
        const id = r.indices[f * r.k + j];
        return { id, token: tokenText.get(id) ?? '', value: round(r.values[f * r.k + j]) };
      });
    logitEffects = { promoted: rows(logits.promoted), suppressed: rows(logits.suppressed) };
  }
  return {
    index: f,
    dead: fires === 0,
    label,
    stats: {
      tokens: col.tokens,
      activeTokens: fires,
      density: round(fires / col.tokens),
      maxAct: round(max),
      meanActive: fires > 0 ? round(col.sums[f] / fires) : 0,
      mean: round(col.sums[f] / col.tokens),
    },
    histogram,
    top: col.top
      .sorted(f)
      .map((e) => contextOf(col, col.topSlots, e.slot, e.act))
      .filter((c): c is FeatureContext => c !== null),
    bands,
    logits: logitEffects,
    similar: Array.from({ length: similar.k }, (_, j) => ({
      index: similar.indices[f * similar.k + j],
      cosine: round(similar.values[f * similar.k + j]),
    })).filter((s) => s.index >= 0),
    cluster: cluster < 0 ? null : cluster,
  };
}

/** A kept context with its token texts (null if its document's text is gone, which the pass prevents). */
export function contextOf(
  col: FeatureCollection,
  slots: ContextSlots,
  slot: number,
  act: number,
): FeatureContext | null {
  const doc = col.documents[slots.docs[slot]];
  const text = doc?.text;
  if (!doc || text === null || text === undefined) return null;
  const o = slot * slots.width;
  const n = slots.lengths[slot];
  const tokens: string[] = [];
  const acts: number[] = [];
  let lo = Infinity;
  let hi = 0;
  for (let p = 0; p < n; p++) {
    const s = slots.starts[o + p];
    const e = slots.ends[o + p];
    tokens.push(text.slice(s, e));
    acts.push(round(slots.acts[o + p]));
    lo = Math.min(lo, s);
    hi = Math.max(hi, e);
  }
  const focus = slots.focus[slot];
  return {
    source: doc.source,
    act: round(act),
    focus,
    tokens,
    acts,
    span: [slots.starts[o + focus], slots.ends[o + focus]],
    range: [lo, hi],
  };
}

function labelContext(col: FeatureCollection, slots: ContextSlots, slot: number): LabelContext {
  const o = slot * slots.width;
  const n = slots.lengths[slot];
  const text = col.documents[slots.docs[slot]]?.text ?? '';
  const texts: string[] = [];
  for (let p = 0; p < n; p++) texts.push(text.slice(slots.starts[o + p], slots.ends[o + p]));
  return {
    ids: slots.ids.subarray(o, o + n),
    texts,
    acts: slots.acts.subarray(o, o + n),
    focus: slots.focus[slot],
  };
}

async function decodeTokens(
  model: HookedModel,
  logits: LogitEffectsResult | string,
): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  if (typeof logits === 'string' || !model.tokenizer) return out;
  const ids = new Set<number>([...logits.promoted.indices, ...logits.suppressed.indices]);
  for (const id of ids) {
    let text = await model.tokenizer.decode([id]);
    if (text === '') text = model.tokenizer.idToToken(id) ?? '';
    out.set(id, text);
  }
  return out;
}

function round(x: number): number {
  return x === 0 || !Number.isFinite(x) ? x : Number(x.toPrecision(4));
}
