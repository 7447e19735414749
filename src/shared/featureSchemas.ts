/**
 * The feature database's records (src/engine/features/types.ts) as message
 * schemas: the engine process sends them to the extension host, which passes
 * them on to the Feature Browser and Cluster Map webviews, and each side
 * checks them on arrival. Here rather than in either protocol file because
 * both protocols carry them and the webview may import only src/shared.
 */
import { Infer, arrayOf, bool, literal, nonNegInt, nullable, num, object, pairOf, str } from './schema';

/** [start, end) in UTF-16 code units. */
const span = pairOf(nonNegInt);

export const featureContext = object({
  /** The document, relative to the database's corpus (see `databaseInfo.corpus`). */
  source: str,
  act: num,
  /** Index into `tokens` of the token the context is about. */
  focus: nonNegInt,
  tokens: arrayOf(str),
  acts: arrayOf(num),
  span,
  range: span,
});
export type FeatureContextMessage = Infer<typeof featureContext>;

export const activationBand = object({
  lo: num,
  hi: num,
  fraction: num,
  samples: arrayOf(featureContext),
});

export const activationHistogram = object({
  scale: literal('log2'),
  binsPerOctave: num,
  edges: arrayOf(num),
  counts: arrayOf(nonNegInt),
});
export type HistogramMessage = Infer<typeof activationHistogram>;

const tokenValue = object({ id: nonNegInt, token: str, value: num });

export const featureLabel = object({
  text: str,
  kind: literal('token', 'previous', 'phrase', 'none'),
  tokens: arrayOf(object({ text: str, id: nonNegInt, share: num, score: num })),
  coverage: num,
});

export const featureStatistics = object({
  tokens: nonNegInt,
  activeTokens: nonNegInt,
  density: num,
  maxAct: num,
  meanActive: num,
  mean: num,
});

export const featureDashboard = object({
  index: nonNegInt,
  dead: bool,
  label: featureLabel,
  stats: featureStatistics,
  histogram: nullable(activationHistogram),
  top: arrayOf(featureContext),
  bands: arrayOf(activationBand),
  logits: nullable(object({ promoted: arrayOf(tokenValue), suppressed: arrayOf(tokenValue) })),
  similar: arrayOf(object({ index: nonNegInt, cosine: num })),
  cluster: nullable(nonNegInt),
});
export type FeatureDashboardMessage = Infer<typeof featureDashboard>;

/** One row of a feature list. */
export const featureSummary = object({
  index: nonNegInt,
  label: str,
  dead: bool,
  density: num,
  maxAct: num,
  meanActive: num,
  cluster: nullable(nonNegInt),
});
export type FeatureSummaryMessage = Infer<typeof featureSummary>;

export const featureCluster = object({
  id: nonNegInt,
  label: str,
  size: nonNegInt,
  /** Member features, the densest first. */
  members: arrayOf(nonNegInt),
});
export type FeatureClusterMessage = Infer<typeof featureCluster>;

/** A cluster named without its members. */
export const clusterRef = object({ id: nonNegInt, label: str, size: nonNegInt });
export type ClusterRef = Infer<typeof clusterRef>;

/** What a feature database describes about itself: where it came from, how big it is. */
export const databaseInfo = object({
  /** The SAE folder's name, for titles. */
  sae: str,
  /** The database folder. */
  dir: str,
  model: str,
  hook: str,
  /** The corpus path as given to the build; context sources are relative to it. */
  corpus: str,
  tokens: nonNegInt,
  documents: nonNegInt,
  contextSize: nonNegInt,
  dSae: nonNegInt,
  liveFeatures: nonNegInt,
  clusters: nonNegInt,
  createdAt: str,
  /** Why logit effects are missing, when they are. */
  logitsNote: nullable(str),
  clusterNote: str,
});
export type DatabaseInfo = Infer<typeof databaseInfo>;

/** How a feature list is ordered; 'relevance' is a search's own order (best match first), and index order without a query. */
export const featureSort = literal('relevance', 'index', 'density', 'maxAct', 'meanActive');
export type FeatureSort = Infer<typeof featureSort>;

/** The 2-D map: one point per live feature, in parallel columns (a map has as many points as live features). */
export const featureMapPoints = object({
  index: arrayOf(nonNegInt),
  x: arrayOf(num),
  y: arrayOf(num),
  cluster: arrayOf(nonNegInt),
  label: arrayOf(str),
});
export type FeatureMapPoints = Infer<typeof featureMapPoints>;

type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/**
 * A read-only record (as the feature database returns them) typed as the
 * message it is sent as. The parameter's type makes the compiler check that
 * the record has the message's shape; only `readonly` is dropped.
 */
export function asMessage<T>(record: DeepReadonly<T>): T {
  return record as unknown as T;
}
