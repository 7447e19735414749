/**
 * Wires the Feature Browser and the Cluster Map into the extension: their
 * shared database state (each panel registers the serializer that brings it
 * back after a window reload) and their commands (package.json lists them for the palette):
 *
 *   loupe.openFeatureBrowser    the list, search and dashboards
 *   loupe.openClusterMap        the 2-D map of the features by cluster
 *   loupe.showFeatureDashboard  one feature's dashboard (an index argument, or asked for)
 */
import * as vscode from 'vscode';
import { ClusterMap } from './clusterMap';
import { EngineState } from './engineState';
import { FeatureBrowser } from './featureBrowser';
import { FeatureDatabaseWatch } from './featureBrowserShared';

export function registerFeaturePanels(
  extensionUri: vscode.Uri,
  engine: EngineState,
  log: vscode.LogOutputChannel,
): vscode.Disposable[] {
  const database = new FeatureDatabaseWatch(engine, log);
  const browser = new FeatureBrowser(extensionUri, engine, database, log);
  const map = new ClusterMap(extensionUri, engine, database, browser, log);
  browser.map = map;
  return [
    database,
    browser,
    map,
    vscode.commands.registerCommand('loupe.openFeatureBrowser', () => browser.show()),
    vscode.commands.registerCommand('loupe.openClusterMap', () => map.show()),
    vscode.commands.registerCommand('loupe.showFeatureDashboard', showFeatureDashboard(engine, browser)),
  ];
}

/** With an index (the inspector, a link), that feature's dashboard; without, asks which. */
function showFeatureDashboard(engine: EngineState, browser: FeatureBrowser) {
  return async (arg?: unknown): Promise<void> => {
    if (typeof arg === 'number' && Number.isSafeInteger(arg) && arg >= 0) return browser.show(arg);
    const s = engine.status;
    const dSae = s.kind === 'ready' ? (s.sae?.dSae ?? null) : null;
    if (dSae === null) {
      void vscode.window.showInformationMessage('Loupe: feature dashboards need an SAE; load one first.');
      return;
    }
    const typed = await vscode.window.showInputBox({
      title: 'Loupe: Show Feature Dashboard',
      prompt: `A feature of ${s.kind === 'ready' ? s.sae?.name : 'the SAE'} (0 to ${dSae - 1})`,
      placeHolder: 'Feature index, e.g. 42',
      validateInput: (v) => {
        const m = /^\s*#?(\d+)\s*$/.exec(v);
        return m && Number(m[1]) < dSae ? null : `Type a feature index from 0 to ${dSae - 1}.`;
      },
    });
    const m = typed === undefined ? null : /^\s*#?(\d+)\s*$/.exec(typed);
    if (m) browser.show(Number(m[1]));
  };
}
