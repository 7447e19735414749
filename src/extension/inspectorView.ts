/**
 * The token inspector: a webview view in Loupe's sidebar that follows the
 * caret. For the token under it, it lists the features active there (with
 * labels when the SAE has a feature database) and the model's next-token
 * predictions; choosing a feature shows its heat map. The webview is a
 * separate bundle (dist/webview/inspector.js) behind a strict CSP; the
 * messages both ways are in src/webview/protocol.ts and checked on arrival.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { HostToInspector, InspectedToken, inspectorToHost } from '../webview/protocol';
import { DocumentAnalyses, isAnalysable } from './analyses';
import { TokenDecorations, toRange } from './decorations';
import { EngineError } from './engineClient';
import { EngineState } from './engineState';
import { HeatMap } from './heatMap';
import { LagProbe } from './lagProbe';
import { panelHtml, panelOptions } from './webviewPanelHost';

export const INSPECTOR_VIEW = 'loupe.inspector';
const FEATURES_SHOWN = 24;
const PREDICTIONS_SHOWN = 5;
/** The caret moves in bursts (arrow keys held down); inspect where it settles. */
const CURSOR_DEBOUNCE_MS = 60;

export class InspectorView implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | null = null;
  private readonly subscriptions: vscode.Disposable[] = [];
  private cursorTimer: NodeJS.Timeout | undefined;
  /** Bumped per inspection, so that a slow reply for an older caret position is dropped. */
  private inspection = 0;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly engine: EngineState,
    private readonly analyses: DocumentAnalyses,
    private readonly heatMap: HeatMap,
    private readonly decorations: TokenDecorations,
    private readonly probe: LagProbe,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.subscriptions.push(
      vscode.window.onDidChangeTextEditorSelection((e) => {
        if (e.textEditor !== vscode.window.activeTextEditor) return;
        clearTimeout(this.cursorTimer);
        this.cursorTimer = setTimeout(() => void this.showToken(), CURSOR_DEBOUNCE_MS);
      }),
      vscode.window.onDidChangeActiveTextEditor(() => void this.showToken()),
      analyses.onDidAnalyse((a) => {
        if (a.uri === vscode.window.activeTextEditor?.document.uri.toString()) void this.showToken();
      }),
      analyses.onDidChangeState(() => {
        this.postEngine();
        const document = vscode.window.activeTextEditor?.document;
        if (document && !this.analyses.ready(document)) void this.showToken();
      }),
      engine.onDidChange(() => {
        this.postEngine();
        void this.showToken();
      }),
      heatMap.onDidChange(() => {
        this.post({ type: 'heatMap', legend: this.heatMap.legend() });
      }),
    );
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    view.webview.options = panelOptions(this.extensionUri);
    view.webview.html = panelHtml(view.webview, this.extensionUri, 'inspector', 'Token Inspector');
    view.webview.onDidReceiveMessage((raw: unknown) => this.receive(raw), null, this.subscriptions);
    view.onDidChangeVisibility(
      () => (view.visible ? this.sendAll() : this.clearCurrent()),
      null,
      this.subscriptions,
    );
    view.onDidDispose(() => {
      this.view = null;
      this.clearCurrent();
    });
  }

  dispose(): void {
    clearTimeout(this.cursorTimer);
    for (const d of this.subscriptions) d.dispose();
  }

  private receive(raw: unknown): void {
    let message;
    try {
      message = inspectorToHost.parse(raw);
    } catch (err) {
      this.log.error(`inspector: ignored a malformed message: ${(err as Error).message}`);
      return;
    }
    switch (message.type) {
      case 'ready':
        this.sendAll();
        break;
      case 'showHeatMap':
        void this.heatMap.show(message.feature);
        break;
      case 'openDashboard':
        void vscode.commands.executeCommand('loupe.showFeatureDashboard', message.feature);
        break;
      case 'navigate':
        this.heatMap.navigate(message.direction);
        break;
      case 'clearHeatMap':
        this.heatMap.clear();
        break;
      case 'run':
        void vscode.commands.executeCommand(message.command);
        break;
    }
  }

  private sendAll(): void {
    this.postEngine();
    this.post({ type: 'heatMap', legend: this.heatMap.legend() });
    void this.showToken();
  }

  private postEngine(): void {
    const s = this.engine.status;
    const a = this.analyses.state;
    const analysing =
      a.kind === 'running' && a.uri === vscode.window.activeTextEditor?.document.uri.toString()
        ? `Analysing ${path.basename(vscode.Uri.parse(a.uri).path)}`
        : null;
    this.post({
      type: 'engine',
      model: s.kind === 'ready' ? s.model.name : null,
      sae: s.kind === 'ready' ? (s.sae?.name ?? null) : null,
      labels: s.kind === 'ready' && (s.sae?.hasFeatureDatabase ?? false),
      busy: s.kind === 'loading' ? s.message : analysing,
      problem: s.kind === 'failed' ? s.message : s.kind === 'ready' ? s.saeProblem : null,
    });
  }

  private async showToken(): Promise<void> {
    if (!this.view?.visible) return;
    const seq = ++this.inspection;
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      // A webview panel (a feature dashboard, the cluster map) has the focus: keep the token shown.
      if (vscode.window.tabGroups.activeTabGroup.activeTab?.input instanceof vscode.TabInputWebview) return;
      return this.noToken('Open a file to see what the model makes of its tokens.');
    }
    const document = editor.document;
    if (!isAnalysable(document)) return this.noToken('Loupe analyses files and untitled documents.');
    const analysis = this.analyses.ready(document);
    if (!analysis) {
      const a = this.analyses.state;
      const here = document.uri.toString();
      if (a.kind === 'skipped' && a.uri === here) return this.noToken(a.reason);
      if (a.kind === 'failed' && a.uri === here) return this.noToken(`The analysis failed: ${a.message}`);
      return this.noToken(this.engine.status.kind === 'failed' ? 'No model is loaded.' : 'Analysing…', false);
    }
    const { spans } = analysis;
    const t = spans.tokenAt(document.offsetAt(editor.selection.active));
    if (t < 0 || !spans.visible(t)) return this.noToken('Move the cursor onto some text.');
    const range = toRange(spans, t);
    this.decorations.drawCurrent(editor, range);
    try {
      const r = await this.engine.client.request('inspect', {
        document: analysis.uri,
        version: analysis.version,
        token: t,
        features: FEATURES_SHOWN,
        predictions: PREDICTIONS_SHOWN,
      });
      if (seq !== this.inspection) return;
      const token: InspectedToken = {
        file: path.basename(document.uri.path),
        line: range.start.line + 1,
        column: range.start.character + 1,
        text: spans.tokenText(t),
        id: spans.ids[t],
        index: t,
        activeFeatures: r.activeFeatures,
        features: r.features,
        predictions: r.predictions.map((p) => ({ text: p.text, prob: p.prob })),
      };
      this.post({ type: 'token', token });
    } catch (err) {
      if (seq !== this.inspection || (err instanceof EngineError && (err.stale || err.cancelled))) return;
      this.log.error(`inspector: ${(err as Error).message}`);
      this.noToken(`Could not inspect this token: ${(err as Error).message}`);
    }
  }

  private noToken(reason: string, clearOutline = true): void {
    if (clearOutline) this.clearCurrent();
    this.post({ type: 'noToken', reason });
  }

  private clearCurrent(): void {
    for (const editor of vscode.window.visibleTextEditors) this.decorations.drawCurrent(editor, null);
  }

  private post(message: HostToInspector): void {
    if (!this.view) return;
    this.probe.measure('posting to the inspector', () => void this.view?.webview.postMessage(message));
  }
}
