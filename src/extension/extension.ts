/**
 * The VS Code side of Loupe: wires the pieces together. The engine runs in
 * its own process (engineClient.ts); the extension host only keeps per-token
 * spans and draws.
 *
 *   engineState   what is loaded, following the settings
 *   analyses      the open document's tokens and features, per version
 *   overlay       token boundaries in the editor
 *   heatMap       one feature's activation over the file, with navigation
 *   inspectorView the sidebar webview that follows the caret
 *   hover         features and prediction under the mouse
 *   statusBar     the loaded model and SAE
 *   modelTree     the Models & SAEs tree: folders, their configs, load
 *   jobs          train SAE, dashboards, export: a second engine process
 *   lens*, heads*, attention   the Lens Grid, the Heads panel, attention in the editor
 *
 * Panels to come (the feature browser, the cluster map) hang
 * off the same EngineState and add their own methods to the engine protocol.
 */
import * as vscode from 'vscode';
import { DocumentAnalyses } from './analyses';
import { registerCausalCommands } from './causalCommands';
import { ScoreHeatMap } from './causalHeatMap';
import { registerResultPanels } from './causalPanel';
import { registerCommands } from './commands';
import { affectsEngine } from './config';
import { TokenDecorations } from './decorations';
import { EngineState } from './engineState';
import { registerFeaturePanels } from './featureBrowserCommands';
import { HeatMap } from './heatMap';
import { TokenHover } from './hover';
import { INSPECTOR_VIEW, InspectorView } from './inspectorView';
import { JobsEngine } from './jobs';
import { registerJobCommands } from './jobsCommands';
import { LagProbe } from './lagProbe';
import { registerLensViews } from './lensCommands';
import { registerModelTree } from './modelTree';
import { registerProbeCommands } from './probeCommands';
import { TokenOverlay } from './overlay';
import { LoupeStatusBar } from './statusBar';

export function activate(context: vscode.ExtensionContext): void {
  const t0 = performance.now();
  const log = vscode.window.createOutputChannel('Loupe', { log: true });
  const push = <T extends vscode.Disposable>(d: T): T => {
    context.subscriptions.push(d);
    return d;
  };
  push(log);
  const probe = push(new LagProbe(log));
  const engine = push(new EngineState(context.extensionPath, log));
  const analyses = push(new DocumentAnalyses(engine, log, probe));
  const decorations = push(new TokenDecorations());
  const heatMap = push(new HeatMap(engine, analyses, decorations, probe, log));
  push(new TokenOverlay(analyses, decorations, heatMap, probe));
  const inspector = push(
    new InspectorView(context.extensionUri, engine, analyses, heatMap, decorations, probe, log),
  );
  push(vscode.window.registerWebviewViewProvider(INSPECTOR_VIEW, inspector));
  push(
    vscode.languages.registerHoverProvider(
      [{ scheme: 'file' }, { scheme: 'untitled' }],
      new TokenHover(engine, analyses),
    ),
  );
  push(new LoupeStatusBar(engine, analyses));
  for (const d of registerCommands({ engine, analyses, heatMap, log })) push(d);
  // The Feature Browser and the Cluster Map (panels in the editor area), with their commands.
  for (const d of registerFeaturePanels(context.extensionUri, engine, log)) push(d);
  push(vscode.workspace.onDidChangeConfiguration((e) => affectsEngine(e) && engine.loadSoon()));
  // The Models & SAEs tree, and the long jobs (train SAE, dashboards, export) in a second engine process.
  const models = registerModelTree(engine, log);
  for (const d of models.disposables) push(d);
  const jobs = push(new JobsEngine(context.extensionPath, log));
  for (const d of registerJobCommands({ engine, jobs, tree: models.tree })) push(d);
  // The Lens Grid, the Heads panel and attention in the editor (lenses and heads).
  const lensViews = registerLensViews({
    extensionUri: context.extensionUri,
    engine,
    analyses,
    jobs,
    log,
    state: context.workspaceState,
  });
  for (const d of lensViews) push(d);
  // Probes and causal tools: results panels, per-token score heat maps, and their commands.
  const results = registerResultPanels(context, log);
  for (const d of results.disposables) push(d);
  const scores = push(new ScoreHeatMap());
  let lastEditor = vscode.window.activeTextEditor;
  push(vscode.window.onDidChangeActiveTextEditor((e) => e && (lastEditor = e)));
  const editorForCommands = () =>
    vscode.window.activeTextEditor ?? (lastEditor && !lastEditor.document.isClosed ? lastEditor : undefined);
  const causal = registerCausalCommands({
    engine,
    jobs,
    panels: results.panels,
    scores,
    log,
    lastEditor: editorForCommands,
  });
  for (const d of causal.disposables) push(d);
  const probeCommands = registerProbeCommands({
    engine,
    jobs,
    panel: results.panels.probe,
    scores,
    storage: context.globalStorageUri,
    lastEditor: editorForCommands,
    steerWithProbe: causal.steerWithProbe,
  });
  for (const d of probeCommands) push(d);
  void vscode.commands.executeCommand('setContext', 'loupe.heatMapActive', false);
  void engine.load();
  // Activation runs on the extension host's thread too; the engine process starts within it.
  log.info(
    `activated in ${(performance.now() - t0).toFixed(0)} ms (engine process ${engine.client.pid ?? 'starting'})`,
  );
}

export function deactivate(): void {}
