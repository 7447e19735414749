/**
 * Messages between the extension host and the two lens panels, declared
 * once: the Lens Grid (src/extension/lensGrid.ts ↔ src/webview/lensGrid/main.ts)
 * and the Heads panel (src/extension/headsPanel.ts ↔ src/webview/heads/main.ts).
 * Both sides check each message on arrival and take their types from these
 * schemas.
 *
 * The host follows the editor and sends what the panels show; the webviews
 * keep only UI state (the lens chosen, the colouring, the cell or head in
 * focus, the A/B tokens) through getState/setState and say it in `ready`, so
 * a panel shown again or restored after a reload asks for the same view.
 */
import {
  Infer,
  arrayOf,
  bool,
  int,
  literal,
  nonNegInt,
  nullable,
  num,
  object,
  str,
  variants,
} from '../shared/schema';

/** The lenses the grid offers: the engine's kinds, with the attention-free projection's two variants. */
export const lensChoice = literal('logit', 'tuned', 'free-self', 'free-skip');
export type LensChoice = Infer<typeof lensChoice>;

/** Commands a panel's buttons may run; nothing else passes. */
export const lensCommand = literal(
  'loupe.loadTunedLens',
  'loupe.trainTunedLens',
  'loupe.showAttention',
  'loupe.clearAttention',
  'loupe.openLensGrid',
  'loupe.openHeads',
  'loupe.showLog',
);
export type LensCommand = Infer<typeof lensCommand>;

/** A button a panel shows with a problem: the command and its label. */
export const lensAction = object({ command: lensCommand, label: str });
export type LensAction = Infer<typeof lensAction>;

/** The most cells a grid message carries (layers × columns × top-k); far above a 100-layer model's. */
const MAX_CELLS = 4_000_000;

// ---- the Lens Grid ----

export const lensGridData = object({
  /** The file's name and where the columns are in it ("lines 3–9"), for the header. */
  file: str,
  where: str,
  lens: lensChoice,
  /** The tuned lens's folder name, when the lens is the tuned one. */
  tunedLens: nullable(str),
  /** Lens layers, one row each, top to bottom; layer `nLayers` is the model's own output. */
  layers: arrayOf(nonNegInt, 10_000),
  nLayers: nonNegInt,
  /** One per column: the document token and its text as it stands in the file. */
  columns: arrayOf(object({ token: nonNegInt, text: str }), 1024),
  /** Cells per layer and column: the top `top` tokens (indices into `words`) and their probabilities, [layer][column][k]. */
  top: nonNegInt,
  words: arrayOf(str, MAX_CELLS),
  topWords: arrayOf(int, MAX_CELLS),
  topProbs: arrayOf(num, MAX_CELLS),
  /** Per column: the token that comes next in the file (an index into `words`), or -1 past the window. */
  nextWords: arrayOf(int, 1024),
  /** Per layer and column: the next token's probability and rank (0: none), and the entropy in nats. */
  nextProbs: arrayOf(num, MAX_CELLS),
  nextRanks: arrayOf(nonNegInt, MAX_CELLS),
  entropy: arrayOf(num, MAX_CELLS),
  /** Selected tokens left out (past 256 columns or the model's context). */
  truncated: nonNegInt,
  /** The engine's time, and the time from request to reply, in ms. */
  engineMillis: num,
  millis: num,
});
export type LensGridData = Infer<typeof lensGridData>;

export const hostToLensGrid = variants('type', {
  grid: { data: lensGridData },
  /** A new grid is being computed; the one shown stays until it arrives. */
  busy: { message: str },
  /** Nothing to show, and why (no file, no model, no tuned lens, an error), with what to do about it. */
  problem: { message: str, actions: arrayOf(lensAction, 8) },
  /** Show this lens (a command chose it, e.g. after loading a tuned lens). */
  lens: { lens: lensChoice },
});
export type HostToLensGrid = Infer<typeof hostToLensGrid>;

export const lensGridToHost = variants('type', {
  ready: { lens: lensChoice },
  setLens: { lens: lensChoice },
  run: { command: lensCommand },
});
export type LensGridToHost = Infer<typeof lensGridToHost>;

// ---- the Heads panel ----

export const attributionData = object({
  /** Where the prediction is: the file, the token's 1-based line and column, and its text as in the file. */
  file: str,
  line: nonNegInt,
  column: nonNegInt,
  token: str,
  /** The token the attribution is for (the model's prediction, or the one asked for), and B in "A and not B". */
  target: str,
  versus: nullable(str),
  /** The model's logit (difference) before any final soft-cap, and the sum of the parts below (equal up to rounding). */
  logit: num,
  /** After the model's final soft-cap (Gemma 2), or null for a model without one. */
  cappedLogit: nullable(num),
  total: num,
  embed: num,
  posEmbed: nullable(num),
  constant: num,
  /** [layer][head]; per layer the MLP and the attention output bias. */
  heads: arrayOf(arrayOf(num, 1024), 1024),
  mlp: arrayOf(num, 1024),
  attnBias: arrayOf(num, 1024),
});
export type AttributionData = Infer<typeof attributionData>;

export const headDirectionsData = object({
  source: str,
  tokens: nonNegInt,
  windows: nonNegInt,
  cached: bool,
  heads: arrayOf(
    object({
      layer: nonNegInt,
      head: nonNegInt,
      explained: num,
      directions: arrayOf(object({ text: str, fraction: num }), 1000),
    }),
    100_000,
  ),
});
export type HeadDirectionsData = Infer<typeof headDirectionsData>;

/** TextSpan for the loaded model: not asked for yet, being computed, done, or failed. */
export const directionsState = variants('kind', {
  none: {},
  running: { message: str, fraction: nullable(num) },
  ready: { data: headDirectionsData },
  failed: { message: str },
});
export type DirectionsState = Infer<typeof directionsState>;

export const hostToHeads = variants('type', {
  /** The model's shape, or null while none is loaded. */
  model: { name: nullable(str), nLayers: nonNegInt, nHeads: nonNegInt },
  attribution: { data: attributionData },
  /** No attribution to show, and why (no file, the caret off the text, a token that is not one). */
  attributionProblem: { message: str },
  attributionBusy: {},
  directions: { state: directionsState },
  /** What the editor's attention shows now: a head, all heads of a layer (head null), or nothing (layer null). */
  attention: { layer: nullable(nonNegInt), head: nullable(nonNegInt) },
});
export type HostToHeads = Infer<typeof hostToHeads>;

export const headsToHost = variants('type', {
  /** Loaded (or shown again): the A/B pair it keeps, and whether it showed text directions before. */
  ready: { target: str, versus: str, directions: bool },
  /** Attribute to `target` (empty: the model's prediction) and not `versus` (empty: none). */
  setPair: { target: str, versus: str },
  showAttention: { layer: nonNegInt, head: nullable(nonNegInt) },
  /** Compute TextSpan over the model's held-out sample, or a corpus the user chooses. */
  computeDirections: { corpus: literal('default', 'choose') },
  cancelDirections: {},
  run: { command: lensCommand },
});
export type HeadsToHost = Infer<typeof headsToHost>;
