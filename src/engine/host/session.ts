/**
 * What the engine process holds and does for the editor: one model, an
 * optional SAE (with its feature database, when one sits beside it), and the
 * analyses of open documents. worker.ts turns protocol messages into calls
 * here; nothing here knows about messages.
 *
 * An analysis tokenizes the text, cuts it into overlapping windows (see
 * windows.ts) and runs them in batches through the model, only up to the
 * SAE's hook, then through the SAE. Each token keeps its positive feature
 * activations in sparse rows (at most MAX_FEATURES_PER_TOKEN, the largest),
 * which answer the inspector, the hover and heat maps without running
 * anything again. Next-token predictions are read on demand for the one
 * window that holds the token: its last residual stream ([tokens, d_model])
 * is kept for a few windows and decoded through the lens readout graph, which
 * returns the top tokens only, so a 256k vocabulary's [tokens, vocab] logits
 * are never held.
 *
 * Windows are cached by their token ids, so analysing an edited document runs
 * only the windows whose tokens changed (an edit near the end of a file
 * leaves the windows before it as they were).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancelledError, LoupeError } from '../errors';
import { FEATURE_DB_DIR, FeatureDatabase, ListSort } from '../features/database';
import { FeatureSummary } from '../features/types';
import { asMessage } from '../../shared/featureSchemas';
import { FeatureLayer, layerOfFeature } from '../../shared/featureNames';
import { hookShape } from '../hooks';
import { HookedModel } from '../model';
import { AttachedSae, attachSae, saeFeaturesPadded } from '../sae/splice';
import { Sae } from '../sae/sae';
import { Dictionary } from '../dictionaries/dictionary';
import { FittedDictionary, dictionaryFeaturesPadded, fitDictionary } from '../dictionaries/fit';
import { isOtherDictionaryFolder } from '../dictionaries/describe';
import { openDictionary, openTranscoders } from '../dictionaries/open';
import { isTranscoderSetFolder } from '../dictionaries/transcoderSet';
import { Token } from '../tokenizer';
import { LensRequests, ProgressSink } from './lensRequests';
import { EngineParams, EngineResult, FeatureValue, ModelInfo, Prediction, SaeInfo } from './protocol';
import { TokenWindow, planWindows, windowOf } from './windows';

/** Keeps the sparse rows bounded for SAEs that fire densely; a heat map misses only a token's weakest activations. */
const MAX_FEATURES_PER_TOKEN = 128;
/** Bounds one batch's SAE activations ([windows × tokens × d_sae] f32) to about 32 MB. */
const MAX_BATCH_ELEMENTS = 1 << 23;
/**
 * Tokens per batch. onnxruntime runs on this process's only JS thread, so a
 * batch is as long as an inspector or hover request may wait: a few hundred
 * tokens keep that under ~100 ms while batching still pays.
 */
const MAX_BATCH_TOKENS = 512;
const WINDOW_CACHE_SIZE = 1024;
const RESID_CACHE_SIZE = 3;
/**
 * Tokens per analysis window when the SAE names no context: models with long
 * contexts (Gemma 2's 8192, Llama 3.1's 131072) would otherwise make windows
 * whose attention alone is gigabytes, for an editor that shows a few hundred
 * tokens around the caret.
 */
const DEFAULT_WINDOW = 1024;
const DOCUMENT_CACHE_SIZE = 8;

/** Checked between batches; set by a `cancel` message or a new load. */
export interface CancelSignal {
  readonly cancelled: boolean;
}

export type Progress = (message: string, fraction: number | null) => void;

/** A request named a document version this session no longer holds. */
export class StaleError extends Error {
  constructor(document: string, version: number) {
    super(`no analysis of ${document} at version ${version}; analyse it again`);
    this.name = 'StaleError';
  }
}

/** Positive feature activations per token: row t holds index[offsets[t]..offsets[t+1]), largest first. */
interface SparseRows {
  readonly offsets: Int32Array;
  readonly index: Int32Array;
  readonly act: Float32Array;
}

interface DocumentAnalysis {
  readonly version: number;
  readonly tokens: readonly Token[];
  /** 1 when tokens[0] is a BOS the tokenizer put before the text (its span is empty). */
  readonly prefix: number;
  readonly windows: readonly TokenWindow[];
  /** One row per token (BOS's row is empty), once `analyze` has run; null without an SAE. */
  features: SparseRows | null;
  analysed: boolean;
}

interface Loaded {
  readonly model: HookedModel;
  readonly modelInfo: ModelInfo;
  readonly sae: AttachedSae | null;
  /** A dictionary in another format (Gemma Scope, sparsify, a transcoder set, ...): features only, no splice. */
  readonly dictionary: FittedDictionary | null;
  readonly saeInfo: SaeInfo | null;
  readonly database: FeatureDatabase | null;
  /** Tokens per window, BOS included. */
  readonly window: number;
}

export class EngineSession {
  private loaded: Loaded | null = null;
  private readonly documents = new Map<string, DocumentAnalysis>();
  private readonly windowFeatures = new Map<string, SparseRows>();
  private readonly windowResid = new Map<string, Float32Array>();
  /** The feature database the feature requests last used, and its index's modification time then. */
  private databaseSeen: { db: FeatureDatabase; mtime: number | null } | null = null;
  /** The lens and head requests' engine for the loaded model, made on first use (lensRequests.ts). */
  private lensRequests: LensRequests | null = null;
  private threads = 0;

  async load(params: EngineParams<'load'>, progress: Progress): Promise<EngineResult<'load'>> {
    await this.unload();
    this.threads = params.threads;
    const threads = params.threads > 0 ? params.threads : undefined;
    const cacheDir = params.cacheDir ?? undefined;
    progress(`Opening ${path.basename(params.model)}`, null);
    const model = await HookedModel.open(params.model, {
      threads,
      cacheDir,
      onProgress: (p) => progress(`Compiling ${path.basename(params.model)}: ${p.stage}`, p.done / p.total),
    });
    if (!model.tokenizer) {
      await model.dispose();
      throw new LoupeError(`${params.model}: no tokenizer.json, so Loupe cannot read text with this model`);
    }
    const spec = model.spec;
    const modelInfo: ModelInfo = {
      dir: model.checkpoint.dir,
      name: path.basename(model.checkpoint.dir),
      modelType: spec.modelType,
      nLayers: spec.nLayers,
      dModel: spec.dModel,
      nCtx: spec.nCtx,
      dVocab: spec.dVocab,
      nHeads: spec.nHeads,
    };
    let sae: AttachedSae | null = null;
    let dictionary: FittedDictionary | null = null;
    let saeError: string | null = null;
    let database: FeatureDatabase | null = null;
    const warnings: string[] = [];
    if (params.sae !== null && isOtherDictionaryFolder(params.sae)) {
      let dict: Dictionary | null = null;
      try {
        progress(`Opening ${path.basename(params.sae)}`, null);
        dict = isTranscoderSetFolder(params.sae)
          ? openTranscoders(params.sae, { threads, cacheDir })
          : openDictionary(params.sae, { threads, cacheDir });
        dictionary = fitDictionary(model, dict);
        warnings.push(...dict.notes);
      } catch (err) {
        await dict?.dispose();
        saeError = (err as Error).message;
      }
    } else if (params.sae !== null) {
      try {
        progress(`Opening SAE ${path.basename(params.sae)}`, null);
        sae = attachSae(model, Sae.load(params.sae, { threads, cacheDir }));
        warnings.push(...sae.sae.warnings);
      } catch (err) {
        saeError = (err as Error).message;
      }
    }
    if (sae?.sae.dir) {
      try {
        database = FeatureDatabase.open(sae.sae.dir);
      } catch (err) {
        // No database is normal (features show by index); a broken one is worth a warning.
        if (!(err as Error).message.includes('no feature database')) warnings.push((err as Error).message);
      }
    }
    const contextSize = sae?.sae.config.contextSize ?? null;
    const window = Math.min(
      spec.nCtx,
      contextSize !== null && contextSize > 1 ? contextSize : Math.min(spec.nCtx, DEFAULT_WINDOW),
    );
    let saeInfo: SaeInfo | null =
      sae && sae.sae.dir
        ? {
            dir: sae.sae.dir,
            name: path.basename(sae.sae.dir),
            format: 'saelens',
            hook: sae.hook.name,
            architecture: sae.sae.config.architecture,
            dIn: sae.sae.config.dIn,
            dSae: sae.sae.config.dSae,
            layerWidth: null,
            window,
            hasFeatureDatabase: database !== null,
          }
        : null;
    if (dictionary && params.sae !== null) {
      const d = dictionary.dictionary;
      const first = d.coders[0];
      saeInfo = {
        dir: path.resolve(params.sae),
        name: path.basename(path.resolve(params.sae)),
        format: d.format,
        hook: first.input.hook,
        architecture: first.architecture,
        dIn: first.dIn,
        dSae: d.coders.reduce((a, c) => a + c.width, 0),
        layerWidth: d.coders.length > 1 ? first.width : null,
        window,
        hasFeatureDatabase: false,
      };
    }
    this.loaded = { model, modelInfo, sae, dictionary, saeInfo, database, window };
    return { model: modelInfo, sae: saeInfo, saeError, warnings };
  }

  /** The loaded model and SAE, for requests that run them directly (causalRequests.ts). */
  loadedModel(): { model: HookedModel; sae: AttachedSae | null } {
    const { model, sae } = this.require();
    return { model, sae };
  }

  hooks(): EngineResult<'hooks'> {
    const { model } = this.require();
    return {
      hooks: model.hookTable.map((h) => {
        const sizes = hookShape(model.spec, h, 1, 1);
        return {
          name: h.name,
          shape: h.dims.map((d, i) => (d === 'batch' || d === 'pos' ? d : String(sizes[i]))),
        };
      }),
    };
  }

  /** Tokenizes a document version and plans its windows: enough to draw its tokens; `analyze` does the rest. */
  async tokenize(params: EngineParams<'tokenize'>): Promise<EngineResult<'tokenize'>> {
    const { model, window } = this.require();
    const t0 = performance.now();
    const tokens = await model.tokenize(params.text);
    const prefix = tokens.length > 0 && tokens[0].start === 0 && tokens[0].end === 0 ? 1 : 0;
    const windows = planWindows(tokens.length - prefix, window - prefix, Math.floor(window / 8));
    const doc = { version: params.version, tokens, prefix, windows, features: null, analysed: false };
    this.remember(this.documents, params.document, doc, DOCUMENT_CACHE_SIZE);
    return {
      document: params.document,
      version: params.version,
      ids: Int32Array.from(tokens, (t) => t.id),
      starts: Int32Array.from(tokens, (t) => t.start),
      ends: Int32Array.from(tokens, (t) => t.end),
      windows: windows.length,
      millis: performance.now() - t0,
    };
  }

  /** Runs a tokenized document version through the model and SAE, window by window (cached windows are reused). */
  async analyze(
    params: EngineParams<'analyze'>,
    signal: CancelSignal,
    progress: Progress,
  ): Promise<EngineResult<'analyze'>> {
    const { sae, dictionary, saeInfo, window } = this.require();
    const doc = this.document(params.document, params.version);
    const t0 = performance.now();
    const { tokens, prefix, windows } = doc;
    const bodyIds = tokens.slice(prefix).map((t) => t.id);
    const prefixIds = tokens.slice(0, prefix).map((t) => t.id);
    let windowsCached = windows.length;
    if ((sae || dictionary) && saeInfo && !doc.analysed) {
      const rows: (SparseRows | undefined)[] = windows.map((w) =>
        this.cached(this.windowFeatures, windowKey(prefixIds, bodyIds, w)),
      );
      const todo = windows.map((_, i) => i).filter((i) => rows[i] === undefined);
      windowsCached = windows.length - todo.length;
      const perBatch = Math.max(
        1,
        Math.min(
          Math.floor(MAX_BATCH_TOKENS / window),
          Math.floor(MAX_BATCH_ELEMENTS / (window * saeInfo.dSae)),
        ),
      );
      for (let b = 0; b < todo.length; b += perBatch) {
        if (signal.cancelled) throw new CancelledError();
        const batch = todo.slice(b, b + perBatch);
        const ids = batch.map((i) => [...prefixIds, ...bodyIds.slice(windows[i].start, windows[i].end)]);
        const { lengths, acts } = sae
          ? await saeFeaturesPadded(sae, ids)
          : await dictionaryFeaturesPadded(dictionary!, ids);
        const [, T, dSae] = acts.dims;
        batch.forEach((wi, k) => {
          // The window's rows after its BOS, straight from the padded batch.
          const from = (k * T + prefix) * dSae;
          const sparse = sparseRows(acts.data.subarray(from, (k * T + lengths[k]) * dSae), dSae);
          rows[wi] = sparse;
          this.remember(
            this.windowFeatures,
            windowKey(prefixIds, bodyIds, windows[wi]),
            sparse,
            WINDOW_CACHE_SIZE,
          );
        });
        progress('Analysing', (b + batch.length) / todo.length);
      }
      doc.features = assemble(tokens.length, prefix, windows, rows as SparseRows[]);
    }
    doc.analysed = true;
    return {
      document: params.document,
      version: params.version,
      windows: windows.length,
      windowsCached,
      hasFeatures: doc.features !== null,
      millis: performance.now() - t0,
    };
  }

  async inspect(params: EngineParams<'inspect'>): Promise<EngineResult<'inspect'>> {
    const doc = this.analysed(params.document, params.version);
    const t = checkToken(doc, params.token);
    let features: FeatureValue[] = [];
    let activeFeatures = 0;
    if (doc.features) {
      const { offsets, index, act } = doc.features;
      activeFeatures = offsets[t + 1] - offsets[t];
      const n = Math.min(activeFeatures, params.features);
      features = Array.from({ length: n }, (_, k) => {
        const i = index[offsets[t] + k];
        return { index: i, act: act[offsets[t] + k], label: this.label(i), ...this.layerOf(i) };
      });
    }
    const predictions = params.predictions > 0 ? await this.predictions(doc, t, params.predictions) : [];
    return { token: t, activeFeatures, features, predictions };
  }

  featureMap(params: EngineParams<'featureMap'>): EngineResult<'featureMap'> {
    const doc = this.analysed(params.document, params.version);
    const { saeInfo } = this.require();
    if (!doc.features || !saeInfo) throw new LoupeError('no SAE is loaded, so there are no features to map');
    if (params.feature >= saeInfo.dSae) {
      throw new LoupeError(`feature ${params.feature} does not exist (the SAE has ${saeInfo.dSae})`);
    }
    const { offsets, index, act } = doc.features;
    const acts = new Float32Array(doc.tokens.length);
    let max = 0;
    let activeTokens = 0;
    for (let t = 0; t < doc.tokens.length; t++) {
      for (let k = offsets[t]; k < offsets[t + 1]; k++) {
        if (index[k] !== params.feature) continue;
        acts[t] = act[k];
        max = Math.max(max, act[k]);
        activeTokens++;
        break;
      }
    }
    return { feature: params.feature, label: this.label(params.feature), acts, max, activeTokens };
  }

  fileFeatures(params: EngineParams<'fileFeatures'>): EngineResult<'fileFeatures'> {
    const doc = this.analysed(params.document, params.version);
    if (!doc.features) return { features: [] };
    const max = new Map<number, number>();
    const count = new Map<number, number>();
    const { index, act } = doc.features;
    for (let k = 0; k < index.length; k++) {
      max.set(index[k], Math.max(max.get(index[k]) ?? 0, act[k]));
      count.set(index[k], (count.get(index[k]) ?? 0) + 1);
    }
    const features = [...max.entries()]
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .slice(0, params.limit)
      .map(([i, m]) => ({
        index: i,
        act: m,
        label: this.label(i),
        ...this.layerOf(i),
        tokens: count.get(i)!,
      }));
    return { features };
  }

  // ---- the loaded SAE's feature database: the Feature Browser and the Cluster Map ----

  featureDatabase(): EngineResult<'featureDatabase'> {
    const { db, sae } = this.features();
    const m = db.meta;
    return {
      sae,
      dir: db.dir,
      model: m.model,
      hook: m.hook,
      corpus: m.corpus,
      tokens: m.tokens,
      documents: m.documents,
      contextSize: m.contextSize,
      dSae: m.dSae,
      liveFeatures: m.liveFeatures,
      clusters: db.clusters().length,
      createdAt: m.createdAt,
      logitsNote: m.logitsNote,
      clusterNote: m.clusterNote,
    };
  }

  featureList(params: EngineParams<'featureList'>): EngineResult<'featureList'> {
    const { db } = this.features();
    const { offset, limit, includeDead } = params;
    const query = params.query.trim();
    if (query === '') {
      const sort: ListSort = params.sort === 'relevance' ? 'index' : params.sort;
      const total = includeDead ? db.size : db.meta.liveFeatures;
      return { total, offset, features: db.list({ sort, offset, limit, includeDead }) };
    }
    let hits = db.search(query, db.size);
    if (!includeDead) hits = hits.filter((f) => !f.dead);
    const sort = params.sort;
    if (sort === 'index') hits.sort((a, b) => a.index - b.index);
    else if (sort !== 'relevance') hits.sort((a, b) => b[sort] - a[sort] || a.index - b.index);
    return { total: hits.length, offset, features: hits.slice(offset, offset + limit) };
  }

  featureDashboard(params: EngineParams<'featureDashboard'>): EngineResult<'featureDashboard'> {
    const { db } = this.features();
    const dashboard = db.dashboard(params.feature);
    const similar: FeatureSummary[] = dashboard.similar.flatMap((s) =>
      s.index < db.size ? [db.summary(s.index)] : [],
    );
    const cluster = db.clusters().find((c) => c.id === dashboard.cluster);
    return {
      dashboard: asMessage<EngineResult<'featureDashboard'>['dashboard']>(dashboard),
      similar,
      cluster: cluster ? { id: cluster.id, label: cluster.label, size: cluster.size } : null,
    };
  }

  clusterMap(): EngineResult<'clusterMap'> {
    const { db } = this.features();
    const map = db.map();
    return {
      points: {
        index: map.map((p) => p.index),
        x: map.map((p) => p.x),
        y: map.map((p) => p.y),
        cluster: map.map((p) => p.cluster),
        label: map.map((p) => db.summary(p.index).label),
      },
      clusters: asMessage<EngineResult<'clusterMap'>['clusters']>(db.clusters()),
    };
  }

  /** The loaded SAE's database, or an error that says how to get one. */
  private features(): { db: FeatureDatabase; sae: string } {
    const loaded = this.require();
    if (!loaded.saeInfo) {
      throw new LoupeError(
        "no SAE is loaded, so there are no features to browse; load one with 'Loupe: Load SAE Folder…'",
      );
    }
    const db = this.currentDatabase(loaded, loaded.saeInfo.dir);
    if (!db) {
      throw new LoupeError(
        `the SAE ${loaded.saeInfo.name} has no feature database yet; run 'Loupe: Compute Feature Dashboards for the Workspace' (or 'loupe dashboards') to build one`,
      );
    }
    return { db, sae: loaded.saeInfo.name };
  }

  /**
   * The database as it is on disk now. Dashboards can be built (or rebuilt,
   * which swaps the folder) by another process while this one has the SAE
   * loaded, so a database that appeared since the load is opened, and one
   * whose index changed is opened again; labels follow.
   */
  private currentDatabase(loaded: Loaded, saeDir: string): FeatureDatabase | null {
    const indexFile = loaded.database
      ? path.join(loaded.database.dir, 'index.json')
      : [path.join(saeDir, 'index.json'), path.join(saeDir, FEATURE_DB_DIR, 'index.json')].find((f) =>
          fs.existsSync(f),
        );
    const mtime = indexFile ? (fs.statSync(indexFile, { throwIfNoEntry: false })?.mtimeMs ?? null) : null;
    const seen = this.databaseSeen;
    if (loaded.database && seen?.db !== loaded.database) {
      this.databaseSeen = { db: loaded.database, mtime };
      return loaded.database;
    }
    // Unchanged, or gone for a moment while a rebuild swaps the folder in.
    if (mtime === null || (loaded.database && seen?.mtime === mtime)) return loaded.database;
    const db = FeatureDatabase.open(saeDir);
    this.loaded = {
      ...loaded,
      database: db,
      saeInfo: loaded.saeInfo && { ...loaded.saeInfo, hasFeatureDatabase: true },
    };
    this.databaseSeen = { db, mtime };
    return db;
  }

  // ---- lenses and heads: the lens grid, attention, logit attribution, TextSpan (lensRequests.ts) ----

  lensGrid(params: EngineParams<'lensGrid'>): Promise<EngineResult<'lensGrid'>> {
    return this.lenses().grid(this.document(params.document, params.version), params);
  }

  attention(params: EngineParams<'attention'>): Promise<EngineResult<'attention'>> {
    return this.lenses().attention(this.document(params.document, params.version), params);
  }

  logitAttribution(params: EngineParams<'logitAttribution'>): Promise<EngineResult<'logitAttribution'>> {
    return this.lenses().logitAttribution(this.document(params.document, params.version), params);
  }

  headDirections(
    params: EngineParams<'headDirections'>,
    signal: AbortSignal,
    progress: ProgressSink,
  ): Promise<EngineResult<'headDirections'>> {
    return this.lenses().headDirections(params, signal, progress);
  }

  private lenses(): LensRequests {
    const { model } = this.require();
    if (this.lensRequests?.model !== model) this.lensRequests = new LensRequests(model, this.threads);
    return this.lensRequests;
  }

  forget(document: string): void {
    this.documents.delete(document);
  }

  async unload(): Promise<void> {
    const old = this.loaded;
    this.loaded = null;
    this.documents.clear();
    this.windowFeatures.clear();
    this.windowResid.clear();
    const lenses = this.lensRequests;
    this.lensRequests = null;
    await lenses?.dispose();
    await old?.dictionary?.dictionary.dispose();
    await old?.model.dispose();
  }

  private async predictions(doc: DocumentAnalysis, t: number, k: number): Promise<Prediction[]> {
    const { model } = this.require();
    const prefixIds = doc.tokens.slice(0, doc.prefix).map((x) => x.id);
    const bodyIds = doc.tokens.slice(doc.prefix).map((x) => x.id);
    // The BOS row belongs to the first window; a body token to the window that keeps it.
    const body = Math.max(0, t - doc.prefix);
    const w = doc.windows[windowOf(doc.windows, body)];
    if (!w) return []; // an empty document: nothing after BOS
    const key = windowKey(prefixIds, bodyIds, w);
    // The stream after the last block: the readout applies the final norm, unembedding and soft-cap itself.
    const last = `blocks.${model.spec.nLayers - 1}.hook_resid_post`;
    let resid = this.cached(this.windowResid, key);
    if (!resid) {
      const run = await model.runHooksPadded([[...prefixIds, ...bodyIds.slice(w.start, w.end)]], [last]);
      resid = run.hooks.get(last)!.data;
      this.remember(this.windowResid, key, resid, RESID_CACHE_SIZE);
    }
    const d = model.spec.dModel;
    const row = t < doc.prefix ? 0 : doc.prefix + body - w.start;
    const [read] = await this.lenses().readout.read(resid.slice(row * d, (row + 1) * d), [null], k);
    return read.top.map((p) => ({ id: p.id, text: p.text, prob: p.prob }));
  }

  private layerOf(i: number): FeatureLayer {
    return layerOfFeature(i, this.loaded?.saeInfo?.layerWidth ?? null);
  }

  private label(i: number): string | null {
    const db = this.loaded?.database;
    if (!db || i >= db.size) return null;
    return db.summary(i).label || null;
  }

  private require(): Loaded {
    if (!this.loaded) throw new LoupeError('no model is loaded');
    return this.loaded;
  }

  private document(document: string, version: number): DocumentAnalysis {
    const doc = this.documents.get(document);
    if (!doc || doc.version !== version) throw new StaleError(document, version);
    return doc;
  }

  private analysed(document: string, version: number): DocumentAnalysis {
    const doc = this.document(document, version);
    if (!doc.analysed)
      throw new LoupeError(`${document} (version ${version}) is tokenized but not analysed yet`);
    return doc;
  }

  private cached<V>(map: Map<string, V>, key: string): V | undefined {
    const v = map.get(key);
    if (v !== undefined) {
      map.delete(key); // re-insert: a map's order is least recently used first
      map.set(key, v);
    }
    return v;
  }

  private remember<V>(map: Map<string, V>, key: string, value: V, limit: number): void {
    map.delete(key);
    map.set(key, value);
    while (map.size > limit) map.delete(map.keys().next().value as string);
  }
}

function checkToken(doc: DocumentAnalysis, t: number): number {
  if (t >= doc.tokens.length) {
    throw new LoupeError(`token ${t} is past the end of the document (${doc.tokens.length} tokens)`);
  }
  return t;
}

function windowKey(prefixIds: readonly number[], bodyIds: readonly number[], w: TokenWindow): string {
  return `${prefixIds.join(',')}|${bodyIds.slice(w.start, w.end).join(',')}`;
}

/** The positive entries of each row of [rows, d_sae] activations, largest first, at most MAX_FEATURES_PER_TOKEN a row. */
function sparseRows(acts: Float32Array, dSae: number): SparseRows {
  const rows = acts.length / dSae;
  const offsets = new Int32Array(rows + 1);
  let index = new Int32Array(Math.max(16, rows * 8));
  let act = new Float32Array(index.length);
  const rowIndex = new Int32Array(dSae);
  let n = 0;
  for (let r = 0; r < rows; r++) {
    const base = r * dSae;
    let count = 0;
    for (let i = 0; i < dSae; i++) if (acts[base + i] > 0) rowIndex[count++] = i;
    const order = Array.from(rowIndex.subarray(0, count));
    order.sort((x, y) => acts[base + y] - acts[base + x] || x - y);
    const keep = Math.min(count, MAX_FEATURES_PER_TOKEN);
    if (n + keep > index.length) {
      const grown = Math.max(index.length * 2, n + keep);
      index = copyInto(new Int32Array(grown), index);
      act = copyInto(new Float32Array(grown), act);
    }
    for (let k = 0; k < keep; k++) {
      index[n] = order[k];
      act[n++] = acts[base + order[k]];
    }
    offsets[r + 1] = n;
  }
  return { offsets, index: index.slice(0, n), act: act.slice(0, n) };
}

function copyInto<T extends Int32Array | Float32Array>(target: T, source: T): T {
  target.set(source);
  return target;
}

/** One row per document token from the rows each window keeps (an empty row for BOS). */
function assemble(
  count: number,
  prefix: number,
  windows: readonly TokenWindow[],
  rows: readonly SparseRows[],
): SparseRows {
  let total = 0;
  windows.forEach((w, i) => {
    const r = rows[i];
    total += r.offsets[w.end - w.start] - r.offsets[w.keepFrom - w.start];
  });
  const offsets = new Int32Array(count + 1);
  const index = new Int32Array(total);
  const act = new Float32Array(total);
  let t = prefix;
  let o = 0;
  windows.forEach((w, i) => {
    const r = rows[i];
    for (let p = w.keepFrom - w.start; p < w.end - w.start; p++) {
      const from = r.offsets[p];
      const to = r.offsets[p + 1];
      index.set(r.index.subarray(from, to), o);
      act.set(r.act.subarray(from, to), o);
      o += to - from;
      offsets[++t] = o;
    }
  });
  return { offsets, index, act };
}
