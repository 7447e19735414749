/**
 * Messages between the extension host (src/extension/causalPanel.ts) and the
 * results panels of the probe and causal commands (src/webview/causal/main.ts):
 * Probe Results, Activation Patching, Steering and TCAV. One bundle draws all
 * four; the host says which view a panel shows. Both sides check each message
 * on arrival and take their types from these schemas.
 *
 * The host keeps each panel's last result (in the workspace's state, so it
 * comes back after a reload) and sends it whenever the webview says `ready`;
 * the webview saves only UI state.
 */
import { causalMethods, probeSummary } from '../shared/causalSchemas';
import { Infer, arrayOf, literal, num, nullable, object, str, variants } from '../shared/schema';

/** A patching grid as the panel gets it: plain arrays, so that it also keeps as JSON in the workspace's state. */
export const gridView = object({
  rowLabels: arrayOf(str),
  columnLabels: arrayOf(str),
  values: arrayOf(num),
  logitDiffs: arrayOf(num),
});
export type GridView = Infer<typeof gridView>;

export const patchView = object({
  ...causalMethods.patch.result.shape,
  residual: gridView,
  heads: gridView,
});
export type PatchView = Infer<typeof patchView>;

export const resultView = variants('kind', {
  /** `saved`: where the user saved it (null while it lives only in Loupe's storage). */
  probe: { probe: probeSummary, saved: nullable(str) },
  patch: { result: patchView, clean: str, corrupted: str },
  steer: { result: causalMethods.steer.result },
  tcav: { result: causalMethods.tcav.result, concept: str },
});
export type ResultView = Infer<typeof resultView>;
export type ResultKind = ResultView['kind'];

export const hostToResults = variants('type', {
  /** What the panel shows (again, after `ready`). */
  show: { view: resultView },
  /** Work for the panel is running (message) or finished (null). */
  busy: { message: nullable(str) },
});
export type HostToResults = Infer<typeof hostToResults>;

/** What a panel's buttons ask the host to do. */
export const resultAction = literal(
  'saveProbe',
  'exportDirection',
  'applyProbe',
  'openProbe',
  'steerWithProbe',
  'resample',
  'rerun',
);
export type ResultAction = Infer<typeof resultAction>;

export const resultsToHost = variants('type', {
  ready: {},
  action: { action: resultAction },
});
export type ResultsToHost = Infer<typeof resultsToHost>;
