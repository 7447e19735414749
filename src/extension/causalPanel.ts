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
  ResultsToHost,
  resultView,
  resultsToHost,
} from '../webview/causalProtocol';
import { WebviewPanelHost } from './webviewPanelHost';

const TITLES: Record<ResultKind, string> = {
  probe: 'Probe Results',
  patch: 'Activation Patching',
  steer: 'Steering',
  tcav: 'TCAV',
};
export const RESULT_KINDS = Object.keys(TITLES) as ResultKind[];

function resultViewType(kind: ResultKind): string {
  return `loupe.results.${kind}`;
}

export class ResultsPanel implements vscode.Disposable {
  private readonly host: WebviewPanelHost<HostToResults, ResultsToHost>;
  private busyMessage: string | null = null;
  /** What a button asks for; set by the command module that owns this kind. */
  onAction: (action: ResultAction, view: ResultView) => void = () => undefined;

  constructor(
    readonly kind: ResultKind,
    extensionUri: vscode.Uri,
    private readonly state: vscode.Memento,
    log: vscode.LogOutputChannel,
  ) {
    this.host = new WebviewPanelHost(
      extensionUri,
      log,
      {
        viewType: resultViewType(kind),
        title: TITLES[kind],
        entry: 'causal',
        parse: (raw) => resultsToHost.parse(raw),
        logName: TITLES[kind],
      },
      { receive: (message) => this.receive(message) },
    );
  }

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
    this.host.show(vscode.ViewColumn.Beside, false);
    this.post({ type: 'show', view });
  }

  /** Marks the panel busy (a button's work is running) or not. */
  busy(message: string | null): void {
    this.busyMessage = message;
    this.post({ type: 'busy', message });
  }

  dispose(): void {
    this.host.dispose();
  }

  private get stateKey(): string {
    return `loupe.results.${this.kind}`;
  }

  private receive(message: ResultsToHost): void {
    if (message.type === 'ready') {
      const view = this.view;
      if (view) this.post({ type: 'show', view });
      if (this.busyMessage) this.post({ type: 'busy', message: this.busyMessage });
      return;
    }
    const view = this.view;
    if (view) this.onAction(message.action, view);
  }

  private post(message: HostToResults): void {
    this.host.post(message);
  }
}

/** One panel per kind (each registers its serializer). */
export function registerResultPanels(
  context: vscode.ExtensionContext,
  log: vscode.LogOutputChannel,
): { panels: Record<ResultKind, ResultsPanel>; disposables: vscode.Disposable[] } {
  const panels = Object.fromEntries(
    RESULT_KINDS.map((k) => [k, new ResultsPanel(k, context.extensionUri, context.workspaceState, log)]),
  ) as Record<ResultKind, ResultsPanel>;
  return { panels, disposables: RESULT_KINDS.map((k) => panels[k]) };
}
