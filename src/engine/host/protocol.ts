/**
 * Every message between the extension host and the engine process, declared
 * once. The engine process (worker.ts) and the extension's engine client both
 * import these schemas, check each message on arrival, and get their types
 * from them.
 *
 * A request carries an id and gets exactly one reply, `response` or `error`
 * (also when it is cancelled or the engine fails), so no promise is left
 * hanging; while it runs it may send `progress`. `cancel` asks the engine to
 * stop a request early. Documents are keyed by the editor's URI string and
 * version; a request that names an analysis the engine no longer holds gets
 * an error with `stale: true`.
 *
 * Large per-token arrays travel as typed arrays (the channel uses Node's
 * 'advanced' serialization, which clones them instead of writing JSON).
 */
import {
  Infer,
  Schema,
  arrayOf,
  bool,
  float32Array,
  int32Array,
  literal,
  nonNegInt,
  nullable,
  num,
  object,
  str,
  unknownValue,
  variants,
} from '../../shared/schema';
import {
  clusterRef,
  databaseInfo,
  featureCluster,
  featureDashboard,
  featureMapPoints,
  featureSort,
  featureSummary,
} from '../../shared/featureSchemas';
import { causalMethods, jobModel, tokenRef } from '../../shared/causalSchemas';

// ---- what the engine has loaded ----

export const modelInfo = object({
  /** The checkpoint folder. */
  dir: str,
  /** A short name for the status bar: the folder's name. */
  name: str,
  modelType: str,
  nLayers: nonNegInt,
  dModel: nonNegInt,
  nCtx: nonNegInt,
  dVocab: nonNegInt,
  nHeads: nonNegInt,
});
export type ModelInfo = Infer<typeof modelInfo>;

export const saeInfo = object({
  dir: str,
  name: str,
  /** The dictionary's format ('saelens', 'gemma-scope', 'transcoder-set', ...; see dictionaries/dictionary.ts). */
  format: str,
  /** The hook it reads (layer 0's, for a transcoder set or CLT). */
  hook: str,
  architecture: str,
  dIn: nonNegInt,
  /** Features in all: a set's layers side by side, layer L's feature i numbered L · layerWidth + i. */
  dSae: nonNegInt,
  /** Features per layer of a transcoder set or CLT; null for a single dictionary. */
  layerWidth: nullable(nonNegInt),
  /** Tokens per window the engine analyses with: the SAE's training context when it names one, else the model's. */
  window: nonNegInt,
  /** A feature database (labels, dashboards) sits beside the SAE. */
  hasFeatureDatabase: bool,
});
export type SaeInfo = Infer<typeof saeInfo>;

/** A feature with its activation on one token, or its largest in a file. */
export const featureValue = object({
  index: nonNegInt,
  act: num,
  label: nullable(str),
  /** For a transcoder set or CLT: the feature's layer and its index within that layer (null otherwise). */
  layer: nullable(nonNegInt),
  layerIndex: nullable(nonNegInt),
});
export type FeatureValue = Infer<typeof featureValue>;

export const prediction = object({ id: nonNegInt, text: str, prob: num });
export type Prediction = Infer<typeof prediction>;

// ---- the Models & SAEs tree, and the long jobs (train an SAE, build dashboards, export activations) ----

/** A checkpoint folder as the tree shows it: its key configuration, or the problem that keeps it from loading. */
export const modelFolder = object({
  dir: str,
  /** The folder's name, or ORG/NAME for a checkpoint in the Hugging Face hub cache. */
  name: str,
  hub: nullable(object({ repo: str, revision: str })),
  config: nullable(
    object({
      modelType: str,
      nLayers: nonNegInt,
      dModel: nonNegInt,
      nHeads: nonNegInt,
      dMlp: nonNegInt,
      nCtx: nonNegInt,
      dVocab: nonNegInt,
      weightsBytes: nonNegInt,
      /** What the family computes beyond a plain Transformer, a few words each (families/describe.ts). */
      architecture: arrayOf(str),
    }),
  ),
  problem: nullable(str),
  /** Only pickled weights: refused on purpose (the tree greys it out and says how to convert). */
  pickleOnly: bool,
});
export type ModelFolder = Infer<typeof modelFolder>;

/** An SAE folder as the tree shows it; a stopped training run has a checkpoint and no config yet. */
export const saeFolder = object({
  dir: str,
  name: str,
  /** The model folder or hub repository it was found in; null when it was asked for. */
  foundIn: nullable(str),
  config: nullable(
    object({
      /** 'saelens', 'saelens-transcoder', 'gemma-scope', 'sparsify', 'transcoder-set', 'cross-layer-transcoder'. */
      format: str,
      architecture: str,
      /** The hook it reads (layer 0's, for a set). */
      hook: str,
      /** Where a transcoder writes (layer 0's, for a set); null when it rebuilds its input hook. */
      outputHook: nullable(str),
      /** 1, or the layers of a transcoder set or CLT. */
      layers: nonNegInt,
      dIn: nonNegInt,
      dSae: nonNegInt,
      k: nullable(nonNegInt),
      /** The average L0 the files state (Gemma Scope's folder name) or TopK's k; null where unknown. */
      l0: nullable(num),
      modelName: nullable(str),
      contextSize: nullable(nonNegInt),
      trainedByLoupe: bool,
      trainingTokens: nullable(nonNegInt),
      hasFeatureDatabase: bool,
    }),
  ),
  checkpoint: nullable(
    object({ step: nonNegInt, steps: nonNegInt, hook: nullable(str), corpus: nullable(str) }),
  ),
  /** The described model folders (asked for or in the hub cache) whose hook this SAE reads, at its width. */
  fits: arrayOf(str),
  problem: nullable(str),
});
export type SaeFolder = Infer<typeof saeFolder>;

const folderAndJobMethods = {
  /** Describes model and SAE folders, and finds more in the hub cache (null: where the environment says) and inside model folders. */
  describeFolders: {
    params: object({ models: arrayOf(str), saes: arrayOf(str), hubCache: nullable(str) }),
    result: object({
      models: arrayOf(modelFolder),
      saes: arrayOf(saeFolder),
      hub: object({ dir: str, exists: bool, models: arrayOf(modelFolder) }),
    }),
  },
  /**
   * Copies an SAE or probe folder elsewhere (the bundled SAE into a folder of
   * the user's, a probe the user saves), without the entries named: refused
   * over anything but a previous result of the kind, written in one step
   * (safeWrite.ts). Quick, needs no model.
   */
  copyResult: {
    params: object({ from: str, to: str, kind: literal('sae', 'probe'), leaveOut: arrayOf(str) }),
    result: object({ dir: str }),
  },
  /** Trains an SAE (sae/trainer.ts); cancelling stops at a checkpoint that `resume` continues. */
  trainSae: {
    params: object({
      ...jobModel,
      hook: str,
      corpus: str,
      outDir: str,
      architecture: literal('topk', 'relu'),
      expansion: num,
      k: nonNegInt,
      trainingTokens: nonNegInt,
      batchSize: nullable(nonNegInt),
      contextSize: nullable(nonNegInt),
      checkpointEvery: nullable(nonNegInt),
      seed: nullable(nonNegInt),
      resume: bool,
    }),
    result: object({
      outDir: str,
      steps: nonNegInt,
      tokens: nonNegInt,
      metrics: nullable(
        object({
          step: nonNegInt,
          steps: nonNegInt,
          loss: num,
          fvu: num,
          l0: num,
          deadFraction: num,
          activationsPerSecond: num,
        }),
      ),
      seconds: num,
    }),
  },
  /** Trains per-layer transcoders (transcoders/trainer.ts) into a circuit-tracer set; cancelling stops at a checkpoint that `resume` continues. */
  trainTranscoders: {
    params: object({
      ...jobModel,
      /** The layers to train; empty for every layer. */
      layers: arrayOf(nonNegInt),
      corpus: str,
      outDir: str,
      architecture: literal('topk', 'relu', 'jumprelu'),
      skip: bool,
      expansion: num,
      k: nonNegInt,
      trainingTokens: nonNegInt,
      batchSize: nullable(nonNegInt),
      contextSize: nullable(nonNegInt),
      checkpointEvery: nullable(nonNegInt),
      seed: nullable(nonNegInt),
      resume: bool,
    }),
    result: object({
      outDir: str,
      steps: nonNegInt,
      tokens: nonNegInt,
      /** The last step's figures, each the mean over layers. */
      metrics: nullable(
        object({
          step: nonNegInt,
          steps: nonNegInt,
          loss: num,
          fvu: num,
          l0: num,
          deadFraction: num,
          activationsPerSecond: num,
        }),
      ),
      layers: arrayOf(object({ layer: nonNegInt, fvu: num, l0: num, deadFraction: num })),
      seconds: num,
    }),
  },
  /** Builds an SAE's feature database (features/build.ts) in its folder, swapped in whole when complete. */
  buildDashboards: {
    params: object({
      ...jobModel,
      sae: str,
      corpus: str,
      maxTokens: nullable(nonNegInt),
      contextSize: nullable(nonNegInt),
      seed: nullable(nonNegInt),
    }),
    result: object({
      dir: str,
      features: nonNegInt,
      liveFeatures: nonNegInt,
      tokens: nonNegInt,
      documents: nonNegInt,
      clusters: nonNegInt,
      seconds: num,
    }),
  },
  /** Writes a text's activations at the chosen hooks to a .safetensors file (see host/jobs.ts for the layout). */
  exportActivations: {
    params: object({
      ...jobModel,
      text: str,
      hooks: arrayOf(str),
      logits: bool,
      out: str,
      /** Where the text came from, recorded in the file's metadata. */
      source: nullable(str),
    }),
    result: object({
      out: str,
      tokens: nonNegInt,
      windows: nonNegInt,
      tensors: arrayOf(object({ name: str, shape: arrayOf(nonNegInt) })),
      bytes: nonNegInt,
    }),
  },
} as const;

// ---- the loaded SAE's feature database: the Feature Browser and the Cluster Map ----

const featureDatabaseMethods = {
  /** What the database describes about itself; fails when the SAE has none. */
  featureDatabase: {
    params: object({}),
    result: databaseInfo,
  },
  /**
   * A page of features: all of them (query '') or those a search finds (by
   * label, token text or `#index`), ordered by `sort`; `total` counts them all.
   */
  featureList: {
    params: object({
      query: str,
      sort: featureSort,
      offset: nonNegInt,
      limit: nonNegInt,
      includeDead: bool,
    }),
    result: object({ total: nonNegInt, offset: nonNegInt, features: arrayOf(featureSummary) }),
  },
  /** One feature's full dashboard, with the labels of its similar features and its cluster. */
  featureDashboard: {
    params: object({ feature: nonNegInt }),
    result: object({
      dashboard: featureDashboard,
      similar: arrayOf(featureSummary),
      cluster: nullable(clusterRef),
    }),
  },
  /** The 2-D map of the live features and the clusters they fall in. */
  clusterMap: {
    params: object({}),
    result: object({ points: featureMapPoints, clusters: arrayOf(featureCluster) }),
  },
} as const;

// ---- requests: method name → params and result ----

const documentRef = { document: str, version: nonNegInt };

// ---- lenses and heads (src/engine/host/lensRequests.ts): the lens grid, attention, logit attribution, TextSpan ----

export const lensKind = literal('logit', 'tuned', 'attention-free');
export const attentionFreeVariant = literal('self', 'skip');

const lensMethods = {
  /**
   * What each layer predicts at tokens [from, to) of a tokenized document, cut
   * to at most 256 columns and to the model's context; the text runs in one
   * window that ends just after them (their next tokens), with as much context
   * before them as fits. Cells are flattened [layer][column][k].
   */
  lensGrid: {
    params: object({
      ...documentRef,
      from: nonNegInt,
      to: nonNegInt,
      kind: lensKind,
      variant: attentionFreeVariant,
      /** The tuned lens folder (kind 'tuned'). */
      tunedLens: nullable(str),
      top: nonNegInt,
    }),
    result: object({
      kind: lensKind,
      variant: nullable(attentionFreeVariant),
      /** Lens layers 0..L: the stream entering each block, and L after the last. */
      layers: arrayOf(nonNegInt),
      nLayers: nonNegInt,
      /** The document token of each column. */
      positions: int32Array,
      /** Tokens of [from, to) left out (past 256 columns or the context). */
      truncated: nonNegInt,
      top: nonNegInt,
      /** Display texts the *Words arrays index. */
      words: arrayOf(str),
      topWords: int32Array,
      topProbs: float32Array,
      /** Per column: the token that comes next in the document, or -1 when the window ends there. */
      nextWords: int32Array,
      /** Per layer and column: the next token's probability and rank (0: no next token). */
      nextProbs: float32Array,
      nextRanks: int32Array,
      entropy: float32Array,
      millis: num,
    }),
  },
  /**
   * Where the token at `token` attends in one layer: one head, or every head
   * (head null), over the keys of the analysis window that holds it.
   */
  attention: {
    params: object({ ...documentRef, token: nonNegInt, layer: nonNegInt, head: nullable(nonNegInt) }),
    result: object({
      layer: nonNegInt,
      head: nullable(nonNegInt),
      token: nonNegInt,
      /** The document token of each key (the query's window, up to the query). */
      keys: int32Array,
      /** [heads × keys]: one row for a head, nHeads rows for a layer. */
      weights: float32Array,
      heads: nonNegInt,
    }),
  },
  /**
   * Direct logit attribution at a token: what each head, MLP, the embeddings
   * and biases write into the logit of the model's prediction there (or of
   * `target`, minus `versus`'s); tokens by text or as #id.
   */
  logitAttribution: {
    params: object({ ...documentRef, token: nonNegInt, target: nullable(str), versus: nullable(str) }),
    result: object({
      token: nonNegInt,
      target: tokenRef,
      versus: nullable(tokenRef),
      /** Before any final soft-cap: attribution is linear, so of the pre-cap logit. */
      logit: num,
      /** The model's soft-capped logit (difference), or null for a model that does not cap (Gemma 2 does). */
      cappedLogit: nullable(num),
      embed: num,
      posEmbed: nullable(num),
      /** [layer][head]. */
      heads: arrayOf(arrayOf(num)),
      attnBias: arrayOf(num),
      mlp: arrayOf(num),
      constant: num,
      total: num,
    }),
  },
  /**
   * TextSpan: every head's text directions over a corpus (null: the model
   * folder's heldout-sample.json), cached beside the compiled model. Long on a
   * large corpus: progress and cancel.
   */
  headDirections: {
    params: object({ corpus: nullable(str), maxTokens: nullable(nonNegInt), steps: nonNegInt }),
    result: object({
      /** What was read, in a few words. */
      source: str,
      tokens: nonNegInt,
      windows: nonNegInt,
      steps: nonNegInt,
      cached: bool,
      heads: arrayOf(
        object({
          layer: nonNegInt,
          head: nonNegInt,
          explained: num,
          directions: arrayOf(object({ text: str, fraction: num })),
        }),
      ),
    }),
  },
  /** Trains a tuned lens (lens/tunedLensTrainer.ts) in the jobs engine; cancelling writes nothing. */
  trainTunedLens: {
    params: object({
      ...jobModel,
      corpus: str,
      outDir: str,
      steps: nullable(nonNegInt),
      batchTokens: nullable(nonNegInt),
    }),
    result: object({
      outDir: str,
      steps: nonNegInt,
      tokens: nonNegInt,
      /** KL(final ‖ lens) per layer: the logit lens's at the start, the tuned lens's at the end. */
      initialKl: arrayOf(num),
      finalKl: arrayOf(num),
      seconds: num,
    }),
  },
} as const;

export const engineMethods = {
  /** Opens a model and (optionally) an SAE, replacing what was loaded. An SAE that fails is reported in `saeError`; the model stays. */
  load: {
    params: object({ model: str, sae: nullable(str), threads: nonNegInt, cacheDir: nullable(str) }),
    result: object({
      model: modelInfo,
      sae: nullable(saeInfo),
      saeError: nullable(str),
      warnings: arrayOf(str),
    }),
  },
  /** The loaded model's hook points with their shapes (symbolic batch and position axes), as `loupe hooks` lists them. */
  hooks: {
    params: object({}),
    result: object({ hooks: arrayOf(object({ name: str, shape: arrayOf(str) })) }),
  },
  /**
   * Tokenizes a document version; the engine keeps it for `analyze` and the
   * requests after. Quick (no model run): enough to draw the tokens at once.
   */
  tokenize: {
    params: object({ ...documentRef, text: str }),
    result: object({
      ...documentRef,
      /** Per token (BOS included): vocabulary id and UTF-16 span in the text. */
      ids: int32Array,
      starts: int32Array,
      ends: int32Array,
      windows: nonNegInt,
      millis: num,
    }),
  },
  /** Runs a tokenized document version through the model and SAE in windows; `inspect` and the rest need it. */
  analyze: {
    params: object(documentRef),
    result: object({
      ...documentRef,
      windows: nonNegInt,
      /** Windows answered from the engine's cache of earlier analyses. */
      windowsCached: nonNegInt,
      hasFeatures: bool,
      /** Time the engine spent (model and SAE), in ms. */
      millis: num,
    }),
  },
  /** One token of an analysed document: its strongest features and the model's next-token predictions. */
  inspect: {
    params: object({ ...documentRef, token: nonNegInt, features: nonNegInt, predictions: nonNegInt }),
    result: object({
      token: nonNegInt,
      /** How many features are active on it in all. */
      activeFeatures: nonNegInt,
      features: arrayOf(featureValue),
      predictions: arrayOf(prediction),
    }),
  },
  /** One feature's activation on every token of an analysed document. */
  featureMap: {
    params: object({ ...documentRef, feature: nonNegInt }),
    result: object({
      feature: nonNegInt,
      label: nullable(str),
      acts: float32Array,
      max: num,
      activeTokens: nonNegInt,
    }),
  },
  /** The features active anywhere in an analysed document, by their largest activation there. */
  fileFeatures: {
    params: object({ ...documentRef, limit: nonNegInt }),
    result: object({ features: arrayOf(object({ ...featureValue.shape, tokens: nonNegInt })) }),
  },
  ...folderAndJobMethods,
  ...featureDatabaseMethods,
  ...lensMethods,
  ...causalMethods,
} as const satisfies Record<string, { params: Schema<unknown>; result: Schema<unknown> }>;

export type EngineMethod = keyof typeof engineMethods;
export type EngineParams<M extends EngineMethod> = Infer<(typeof engineMethods)[M]['params']>;
export type EngineResult<M extends EngineMethod> = Infer<(typeof engineMethods)[M]['result']>;
export const ENGINE_METHOD_NAMES = Object.keys(engineMethods) as EngineMethod[];

// ---- envelopes ----

export const hostToEngine = variants('type', {
  request: { id: nonNegInt, method: literal(...ENGINE_METHOD_NAMES), params: unknownValue },
  cancel: { id: nonNegInt },
  /** The editor closed the document: drop its analysis. */
  forget: { document: str },
});
export type HostToEngine = Infer<typeof hostToEngine>;

export const engineToHost = variants('type', {
  response: { id: nonNegInt, result: unknownValue },
  error: {
    id: nonNegInt,
    message: str,
    /** The request was cancelled; nothing went wrong. */
    cancelled: bool,
    /** The request named a document version the engine no longer holds; analyse again. */
    stale: bool,
  },
  progress: { id: nonNegInt, message: str, fraction: nullable(num) },
  log: { level: literal('info', 'warn', 'error'), message: str },
});
export type EngineToHost = Infer<typeof engineToHost>;
