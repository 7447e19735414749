/**
 * Messages between the extension host and the token inspector webview,
 * declared once: the host (src/extension/inspectorView.ts) and the webview
 * (src/webview/inspector/main.ts) both import these schemas, check each
 * message on arrival, and take their types from them. The webview holds no
 * data of its own: on `ready` (first load, or shown again) the host sends the
 * current state.
 */
import {
  Infer,
  arrayOf,
  bool,
  literal,
  nonNegInt,
  nullable,
  num,
  object,
  str,
  variants,
} from '../shared/schema';

export const inspectedFeature = object({
  index: nonNegInt,
  act: num,
  label: nullable(str),
  /** A transcoder set's feature: its layer and its index there (null for a single dictionary). */
  layer: nullable(nonNegInt),
  layerIndex: nullable(nonNegInt),
});
export type InspectedFeature = Infer<typeof inspectedFeature>;

export const inspectedToken = object({
  /** The file's name and the token's 1-based line and column, for the header. */
  file: str,
  line: nonNegInt,
  column: nonNegInt,
  /** The token's text as it stands in the file. */
  text: str,
  id: nonNegInt,
  /** Its index among the file's tokens (BOS is 0). */
  index: nonNegInt,
  activeFeatures: nonNegInt,
  features: arrayOf(inspectedFeature),
  predictions: arrayOf(object({ text: str, prob: num })),
});
export type InspectedToken = Infer<typeof inspectedToken>;

export const heatMapLegend = object({
  feature: nonNegInt,
  /** A transcoder set's feature: its layer and index there (see shared/featureNames.ts). */
  layer: nullable(nonNegInt),
  layerIndex: nullable(nonNegInt),
  label: nullable(str),
  /** The feature's largest activation in the active file and the tokens it is active on; null until they are known. */
  max: nullable(num),
  activeTokens: nullable(nonNegInt),
  /** CSS colours of the levels, weakest first, as the editor draws them. */
  colors: arrayOf(str, 64),
});
export type HeatMapLegend = Infer<typeof heatMapLegend>;

export const hostToInspector = variants('type', {
  /** What is loaded, or why nothing is. */
  engine: {
    model: nullable(str),
    sae: nullable(str),
    /** The SAE has a feature database, so features have labels. */
    labels: bool,
    /** Loading or analysing, in a few words; null when idle. */
    busy: nullable(str),
    /** Why the model or SAE is missing, when one is. */
    problem: nullable(str),
  },
  token: { token: inspectedToken },
  /** No token to show, and why (no editor, cursor outside text, analysis pending). */
  noToken: { reason: str },
  heatMap: { legend: nullable(heatMapLegend) },
});
export type HostToInspector = Infer<typeof hostToInspector>;

export const inspectorToHost = variants('type', {
  ready: {},
  showHeatMap: { feature: nonNegInt },
  /** Open the feature's dashboard in the Feature Browser. */
  openDashboard: { feature: nonNegInt },
  navigate: { direction: literal('next', 'previous') },
  clearHeatMap: {},
  run: { command: literal('loupe.loadModel', 'loupe.loadSae', 'loupe.showLog') },
});
export type InspectorToHost = Infer<typeof inspectorToHost>;
