/**
 * The results panels of the probe and causal commands: Probe Results,
 * Activation Patching, Steering and TCAV, one webview panel per kind (drawn
 * by src/webview/causal/main.ts). Each panel's last result is kept in the
 * workspace's state, so a panel hidden and shown, or restored after a window
 * reload by its serializer, shows it again; the buttons' actions go to the
 * command that owns the kind.
 */
import * as vscode from 'vscode';
import {
  HostToResults,
  ResultAction,
  ResultKind,
  ResultView,
  resultView,
  resultsToHost,
} from '../webview/causalProtocol';
import { panelHtml, panelOptions } from './featureBrowserShared';

const TITLES: Record<ResultKind, string> = {
  probe: 'Probe Results',
  patch: 'Activation Patching',
  steer: 'Steering',
  tcav: 'TCAV',
};
export const RESULT_KINDS = Object.keys(TITLES) as ResultKind[];

export function resultViewType(kind: ResultKind): string {
  return `loupe.results.${kind}`;
}

export class ResultsPanel implements vscode.WebviewPanelSerializer, vscode.Disposable {
  private panel: vscode.WebviewPanel | null = null;
  private ready = false;
  private busyMessage: string | null = null;
  /** What a button asks for; set by the command module that owns this kind. */
  onAction: (action: ResultAction, view: ResultView) => void = () => undefined;

  constructor(
    readonly kind: ResultKind,
    private readonly extensionUri: vscode.Uri,
    private readonly state: vscode.Memento,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** The last result shown (also after a reload), if it still reads. */
  get view(): ResultView | null {
    const saved = this.state.get<unknown>(this.stateKey);
    if (saved === undefined) return null;
    try {
      const view = resultView.parse(saved);
      return view.kind === this.kind ? view : null;
    } catch {
      return null;
    }
  }

  /** Shows a result (and keeps it), opening the panel beside the editor when it is closed. */
  async show(view: ResultView): Promise<void> {
    await this.state.update(this.stateKey, view);
    if (!this.panel) {
      this.attach(
        vscode.window.createWebviewPanel(
          resultViewType(this.kind),
          TITLES[this.kind],
          { viewColumn: vscode.ViewColumn.Beside, preserveFocus: false },
          { ...panelOptions(this.extensionUri), retainContextWhenHidden: false },
        ),
      );
    } else {
      this.panel.reveal(undefined, false);
    }
    this.post({ type: 'show', view });
  }

  /** Marks the panel busy (a button's work is running) or not. */
  busy(message: string | null): void {
    this.busyMessage = message;
    this.post({ type: 'busy', message });
  }

  deserializeWebviewPanel(panel: vscode.WebviewPanel): Promise<void> {
    panel.webview.options = panelOptions(this.extensionUri);
    this.attach(panel);
    return Promise.resolve();
  }

  dispose(): void {
    this.panel?.dispose();
  }

  private get stateKey(): string {
    return `loupe.results.${this.kind}`;
  }

  private attach(panel: vscode.WebviewPanel): void {
    this.panel?.dispose();
    this.panel = panel;
    this.ready = false;
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'loupe.svg');
    panel.webview.html = panelHtml(panel.webview, this.extensionUri, 'causal', TITLES[this.kind]);
    const received = panel.webview.onDidReceiveMessage((raw: unknown) => this.receive(raw));
    panel.onDidDispose(() => {
      received.dispose();
      if (this.panel === panel) this.panel = null;
    });
  }

  private receive(raw: unknown): void {
    let message;
    try {
      message = resultsToHost.parse(raw);
    } catch (err) {
      this.log.error(`${TITLES[this.kind]}: ignored a malformed message: ${(err as Error).message}`);
      return;
    }
    if (message.type === 'ready') {
      this.ready = true;
      const view = this.view;
      if (view) this.post({ type: 'show', view });
      if (this.busyMessage) this.post({ type: 'busy', message: this.busyMessage });
      return;
    }
    const view = this.view;
    if (view) this.onAction(message.action, view);
  }

  private post(message: HostToResults): void {
    if (this.panel && this.ready) void this.panel.webview.postMessage(message);
  }
}

/** One panel per kind, with their serializers registered. */
export function registerResultPanels(
  context: vscode.ExtensionContext,
  log: vscode.LogOutputChannel,
): { panels: Record<ResultKind, ResultsPanel>; disposables: vscode.Disposable[] } {
  const panels = Object.fromEntries(
    RESULT_KINDS.map((k) => [k, new ResultsPanel(k, context.extensionUri, context.workspaceState, log)]),
  ) as Record<ResultKind, ResultsPanel>;
  const disposables: vscode.Disposable[] = RESULT_KINDS.flatMap((k) => [
    panels[k],
    vscode.window.registerWebviewPanelSerializer(resultViewType(k), panels[k]),
  ]);
  return { panels, disposables };
}
