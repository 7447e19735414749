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
});
export type ModelInfo = Infer<typeof modelInfo>;

export const saeInfo = object({
  dir: str,
  name: str,
  hook: str,
  architecture: str,
  dIn: nonNegInt,
  dSae: nonNegInt,
  /** Tokens per window the engine analyses with: the SAE's training context when it names one, else the model's. */
  window: nonNegInt,
  /** A feature database (labels, dashboards) sits beside the SAE. */
  hasFeatureDatabase: bool,
});
export type SaeInfo = Infer<typeof saeInfo>;

/** A feature with its activation on one token, or its largest in a file. */
export const featureValue = object({ index: nonNegInt, act: num, label: nullable(str) });
export type FeatureValue = Infer<typeof featureValue>;

export const prediction = object({ id: nonNegInt, text: str, prob: num });
export type Prediction = Infer<typeof prediction>;

// ---- requests: method name → params and result ----

const documentRef = { document: str, version: nonNegInt };

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
