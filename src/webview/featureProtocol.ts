/**
 * Messages between the extension host and the two feature panels, the
 * Feature Browser (src/extension/featureBrowser.ts ↔
 * src/webview/featureBrowser/main.ts) and the Cluster Map
 * (src/extension/clusterMap.ts ↔ src/webview/clusterMap/main.ts), declared
 * once; both sides check each message on arrival and take their types from
 * these schemas.
 *
 * The webviews keep only UI state (the query, the feature shown, the view of
 * the map) through getState/setState, and ask for data again whenever they
 * load: on `ready` the host says what database there is, and the webview
 * requests what its state names. Requests carry an id and get exactly one
 * answer with that id (the data, or `failed`), so a reply for an older
 * request is told apart and dropped.
 */
import {
  clusterRef,
  databaseInfo,
  featureCluster,
  featureDashboard,
  featureMapPoints,
  featureSort,
  featureSummary,
} from '../shared/featureSchemas';
import { Infer, arrayOf, bool, literal, nonNegInt, nullable, str, variants } from '../shared/schema';

/** Whether the loaded SAE has a feature database to show, or why not. */
export const databaseState = variants('kind', {
  ready: { info: databaseInfo },
  /** The engine is loading the model or SAE. */
  loading: { message: str },
  /** No SAE, or no database for it yet; `build` offers the command that computes one. */
  missing: { message: str, build: bool },
  /** The database is there but cannot be read. */
  failed: { message: str },
});
export type DatabaseState = Infer<typeof databaseState>;

/** Commands a panel's buttons may run; nothing else passes. */
export const panelCommand = literal(
  'loupe.computeDashboards',
  'loupe.loadSae',
  'loupe.showLog',
  'loupe.openFeatureBrowser',
  'loupe.openClusterMap',
);
export type PanelCommand = Infer<typeof panelCommand>;

// ---- the Feature Browser ----

export const hostToBrowser = variants('type', {
  database: { state: databaseState },
  /** A page of the list the webview asked for with `list`. */
  list: {
    id: nonNegInt,
    total: nonNegInt,
    offset: nonNegInt,
    features: arrayOf(featureSummary),
  },
  /** The dashboard the webview asked for with `dashboard`. */
  dashboard: {
    id: nonNegInt,
    dashboard: featureDashboard,
    similar: arrayOf(featureSummary),
    cluster: nullable(clusterRef),
  },
  /** A request failed; `message` says why in one line. */
  failed: { id: nonNegInt, message: str },
  /** Show this feature's dashboard (from a command, the inspector or the cluster map). */
  select: { feature: nonNegInt },
  /** Something to tell the user in the panel: where a context came from, why a click did nothing. */
  notice: { message: str, level: literal('info', 'warning') },
});
export type HostToBrowser = Infer<typeof hostToBrowser>;

export const browserToHost = variants('type', {
  ready: {},
  list: {
    id: nonNegInt,
    query: str,
    sort: featureSort,
    offset: nonNegInt,
    limit: nonNegInt,
  },
  dashboard: { id: nonNegInt, feature: nonNegInt },
  /** Open a context's source document at the focus token (`span`) when it is a file Loupe can find. */
  openContext: {
    source: str,
    span: arrayOf(nonNegInt, 2),
    /** The focus token's text, to check that the file still holds it there. */
    text: str,
  },
  showHeatMap: { feature: nonNegInt },
  showInClusterMap: { feature: nonNegInt, cluster: nullable(nonNegInt) },
  /** The feature shown changed: the panel's title follows it. */
  showing: { feature: nullable(nonNegInt), label: str },
  run: { command: panelCommand },
});
export type BrowserToHost = Infer<typeof browserToHost>;

// ---- the Cluster Map ----

export const hostToMap = variants('type', {
  database: { state: databaseState },
  map: { points: featureMapPoints, clusters: arrayOf(featureCluster) },
  /** The map could not be read. */
  failed: { message: str },
  /** Highlight a feature (the one the browser shows) and, if given, select its cluster and zoom to it. */
  focus: { feature: nullable(nonNegInt), cluster: nullable(nonNegInt) },
});
export type HostToMap = Infer<typeof hostToMap>;

export const mapToHost = variants('type', {
  ready: {},
  /** Show this feature's dashboard in the Feature Browser. */
  openFeature: { feature: nonNegInt },
  run: { command: panelCommand },
});
export type MapToHost = Infer<typeof mapToHost>;
