/**
 * What a feature database holds, in the shapes the loader returns and the UI
 * shows: one dashboard per SAE feature (top-activating contexts, samples from
 * lower activation bands, statistics, histogram, logit effects, similar
 * features, an automatic label) plus the summaries that list, search, cluster
 * and map the features. These are JSON on disk, so everything here is plain
 * data (numbers, strings, arrays).
 */

/** Bump when anything written under features/ changes shape; the loader refuses other versions. */
export const FEATURE_DB_SCHEMA = 1;

/** A stretch of a corpus document around one token, with the feature's activation on each token. */
export interface FeatureContext {
  /**
   * The document, relative to the corpus the database was built from (see
   * `FeatureDbMeta.corpus`): a file path inside a corpus folder, the file's own
   * name for a single-file corpus, or `name.jsonl:LINE` for a JSONL line.
   */
  readonly source: string;
  /** The feature's activation on the focus token. */
  readonly act: number;
  /** Index into `tokens` of the token the context is about. */
  readonly focus: number;
  /** Each token's text as it stands in the document (a token that holds part of a character shows the whole character). */
  readonly tokens: readonly string[];
  /** The feature's activation on each token (0 where it does not fire). */
  readonly acts: readonly number[];
  /** The focus token's span in the document's text, [start, end) in UTF-16 code units (VS Code's offsets). */
  readonly span: readonly [number, number];
  /** The whole context's span in the document's text, [start, end) in UTF-16 code units. */
  readonly range: readonly [number, number];
}

/** Contexts sampled uniformly from the tokens whose activation lies in [lo, hi). */
export interface ActivationBand {
  readonly lo: number;
  readonly hi: number;
  /** Estimated fraction of the feature's active tokens in the band (from the histogram). */
  readonly fraction: number;
  readonly samples: readonly FeatureContext[];
}

/**
 * Positive activations counted in log-spaced bins: bin i holds activations in
 * [edges[i], edges[i+1]); the bins are 2^(1/binsPerOctave) wide, fixed in
 * absolute value (not relative to the feature's maximum), so histograms of
 * different features line up. Zeros are not counted (see `density`).
 */
export interface ActivationHistogram {
  readonly scale: 'log2';
  readonly binsPerOctave: number;
  readonly edges: readonly number[];
  readonly counts: readonly number[];
}

export interface TokenValue {
  readonly id: number;
  /** The token decoded to text. */
  readonly token: string;
  readonly value: number;
}

/** The direct effect of a feature's decoder direction on the next-token logits. */
export interface LogitEffects {
  /** Largest first. */
  readonly promoted: readonly TokenValue[];
  /** Most negative first. */
  readonly suppressed: readonly TokenValue[];
}

export interface SimilarFeature {
  readonly index: number;
  /** Cosine similarity of the two decoder directions. */
  readonly cosine: number;
}

/** One token (or phrase) of a label, with the evidence for it. */
export interface LabelToken {
  /** The token's text as it appears in the corpus. */
  readonly text: string;
  readonly id: number;
  /** Its share of the activation mass in the top contexts (0..1). */
  readonly share: number;
  /** Contrast score: share · ln(share / share among low-activating and random tokens). */
  readonly score: number;
}

export interface FeatureLabel {
  /** For people: `"import" · "from"`, `after "def"`, `"self."`; '' for a dead feature. */
  readonly text: string;
  /**
   * Which tokens the label describes: those the feature fires on ('token'),
   * those just before where it fires ('previous'), or the two together ('phrase').
   */
  readonly kind: 'token' | 'previous' | 'phrase' | 'none';
  readonly tokens: readonly LabelToken[];
  /** The share of the top contexts' activation mass the label's tokens carry (0..1): how much of the feature it explains. */
  readonly coverage: number;
}

export interface FeatureStatistics {
  /** Tokens (non-BOS positions) the pass read. */
  readonly tokens: number;
  /** Tokens where the feature was > 0. */
  readonly activeTokens: number;
  /** activeTokens / tokens. */
  readonly density: number;
  readonly maxAct: number;
  /** Mean activation over the tokens where it fires. */
  readonly meanActive: number;
  /** Mean activation over all tokens (zeros included). */
  readonly mean: number;
}

export interface FeatureDashboard {
  readonly index: number;
  /** Never fired in the pass. */
  readonly dead: boolean;
  readonly label: FeatureLabel;
  readonly stats: FeatureStatistics;
  readonly histogram: ActivationHistogram | null;
  /** The top-activating contexts, largest first: at most one per context window (its largest activation). */
  readonly top: readonly FeatureContext[];
  /** Samples from bands of equal width between 0 and the maximum, highest band first. */
  readonly bands: readonly ActivationBand[];
  /** Null when the SAE's hook is not in (or linearly mapped to) the residual stream. */
  readonly logits: LogitEffects | null;
  readonly similar: readonly SimilarFeature[];
  /** The cluster id, or null for a dead feature. */
  readonly cluster: number | null;
}

/** One row of a feature list. */
export interface FeatureSummary {
  readonly index: number;
  readonly label: string;
  readonly dead: boolean;
  readonly density: number;
  readonly maxAct: number;
  readonly meanActive: number;
  readonly cluster: number | null;
}

export interface FeatureCluster {
  readonly id: number;
  readonly label: string;
  readonly size: number;
  /** Member features, the densest first. */
  readonly members: readonly number[];
}

export interface MapPoint {
  readonly index: number;
  readonly x: number;
  readonly y: number;
  readonly cluster: number;
}

export interface FeatureDbMeta {
  readonly schema: number;
  readonly createdAt: string;
  readonly model: string;
  readonly hook: string;
  readonly dSae: number;
  readonly dIn: number;
  /** The corpus path as given to the build; context sources are relative to it (to its folder for a file). */
  readonly corpus: string;
  readonly tokens: number;
  readonly documents: number;
  readonly contextSize: number;
  readonly liveFeatures: number;
  readonly options: Readonly<Record<string, number | string | boolean>>;
  /** Why logit effects are missing, when they are. */
  readonly logitsNote: string | null;
  /** How the clusters were made (sample size, linkage, assignment). */
  readonly clusterNote: string;
  readonly seconds: Readonly<Record<string, number>>;
}
