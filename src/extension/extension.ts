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
 *
 * Panels to come (the feature browser, the cluster map, a models tree) hang
 * off the same EngineState and add their own methods to the engine protocol.
 */
import * as vscode from 'vscode';
import { DocumentAnalyses } from './analyses';
import { registerCommands } from './commands';
import { affectsEngine } from './config';
import { TokenDecorations } from './decorations';
import { EngineState } from './engineState';
import { HeatMap } from './heatMap';
import { TokenHover } from './hover';
import { INSPECTOR_VIEW, InspectorView } from './inspectorView';
import { LagProbe } from './lagProbe';
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
  push(vscode.workspace.onDidChangeConfiguration((e) => affectsEngine(e) && void engine.load()));
  void vscode.commands.executeCommand('setContext', 'loupe.heatMapActive', false);
  void engine.load();
  // Activation runs on the extension host's thread too; the engine process starts within it.
  log.info(
    `activated in ${(performance.now() - t0).toFixed(0)} ms (engine process ${engine.client.pid ?? 'starting'})`,
  );
}

export function deactivate(): void {}
