/**
 * The Lens Grid: a webview panel beside the editor with what each layer
 * predicts at each token of the selection (or, with nothing selected, the
 * tokens around the caret): logit lens, tuned lens, or the attention-free
 * projection (src/webview/lensGrid/main.ts draws it). It follows the editor
 * (lensEditor.ts); each move asks the engine for the grid (the `lensGrid`
 * request), cancelling the one before. One panel at a time; it comes back
 * after a window reload through its serializer, with the lens it showed.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EngineParams } from '../engine/host/protocol';
import {
  HostToLensGrid,
  LensAction,
  LensChoice,
  LensGridData,
  LensGridToHost,
  lensGridToHost,
} from '../webview/lensProtocol';
import { EngineError } from './engineClient';
import { EngineState } from './engineState';
import { LensEditor, tokensInRange } from './lensEditor';
import { affectsTunedLens, tunedLensPath } from './config';
import { WebviewPanelHost } from './webviewPanelHost';

const LENS_GRID_VIEW = 'loupe.lensGrid';
const TITLE = 'Lens Grid';
/** Tokens on each side of the caret's token when nothing is selected. */
const AROUND_CARET = 12;
/** Most likely tokens per cell: the top-10 a click shows. */
const TOP_K = 10;

const LENS_KEY = 'loupe.lensGrid.lens';

const TUNED_ACTIONS: LensAction[] = [
  { command: 'loupe.loadTunedLens', label: 'Load Tuned Lens…' },
  { command: 'loupe.trainTunedLens', label: 'Train Tuned Lens…' },
];

export class LensGridPanel implements vscode.Disposable {
  private readonly host: WebviewPanelHost<HostToLensGrid, LensGridToHost>;
  private lens: LensChoice = 'logit';
  /** A lens a command chose before the webview was ready: it wins over the one the webview kept. */
  private pendingLens: LensChoice | null = null;
  private running: vscode.CancellationTokenSource | null = null;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    extensionUri: vscode.Uri,
    private readonly engine: EngineState,
    private readonly follow: LensEditor,
    private readonly log: vscode.LogOutputChannel,
    private readonly memento: vscode.Memento,
  ) {
    this.host = new WebviewPanelHost(
      extensionUri,
      log,
      {
        viewType: LENS_GRID_VIEW,
        title: TITLE,
        entry: 'lensGrid',
        parse: (raw) => lensGridToHost.parse(raw),
        logName: 'lens grid',
        readyOnlyWhileVisible: true,
        replaceUnrevivedTabs: true,
      },
      { receive: (message) => this.receive(message), disposed: () => this.running?.cancel() },
    );
    this.subscriptions.push(
      follow.onDidChange(() => void this.update()),
      vscode.workspace.onDidChangeConfiguration((e) => affectsTunedLens(e) && void this.update()),
    );
  }

  /** Opens (or reveals) the panel beside the editor, keeping the focus in the editor; with a lens, shows that lens. */
  show(lens?: LensChoice): void {
    if (lens) {
      this.remember(lens);
      if (this.host.ready) this.post({ type: 'lens', lens });
      else this.pendingLens = lens;
    }
    // A new panel shows the lens the grid showed last in this workspace.
    if (!this.host.panel) this.pendingLens ??= this.memento.get<LensChoice>(LENS_KEY) ?? null;
    this.host.show(vscode.ViewColumn.Beside, true);
    void this.update();
  }

  dispose(): void {
    this.running?.cancel();
    this.host.dispose();
    for (const d of this.subscriptions) d.dispose();
  }

  private receive(message: LensGridToHost): void {
    switch (message.type) {
      case 'ready':
        this.remember(this.pendingLens ?? message.lens);
        if (this.pendingLens) this.post({ type: 'lens', lens: this.pendingLens });
        this.pendingLens = null;
        void this.update();
        return;
      case 'setLens':
        this.remember(message.lens);
        void this.update();
        return;
      case 'run':
        this.host.runCommand(message.command);
        return;
    }
  }

  /** Asks the engine for the grid of what the editor shows now, or says why there is none. */
  private async update(): Promise<void> {
    if (!this.host.ready) return;
    this.running?.cancel();
    this.running = null;
    const s = this.engine.status;
    if (s.kind === 'loading') return this.post({ type: 'busy', message: s.message });
    if (s.kind === 'failed') {
      return this.problem(`No model is loaded: ${s.message}`, [
        { command: 'loupe.showLog', label: 'Show Log' },
      ]);
    }
    const followed = this.follow.current;
    if (!followed) return this.problem('Open a file and select some text: the grid shows its tokens.');
    const { editor, analysis } = followed;
    const file = path.basename(editor.document.uri.path);
    if (!analysis) return this.post({ type: 'busy', message: `Reading the tokens of ${file}` });
    const tunedLens = this.lens === 'tuned' ? tunedLensPath() : null;
    if (this.lens === 'tuned' && !tunedLens) {
      return this.problem(
        `No tuned lens is loaded for ${s.model.name}. Load one (a tuned-lens folder with params.safetensors), or train one on your files: it takes a few minutes on the default model.`,
        TUNED_ACTIONS,
      );
    }
    const { spans } = analysis;
    const selection = editor.selection;
    let from: number;
    let to: number;
    if (selection.isEmpty) {
      const t = spans.tokenAt(editor.document.offsetAt(selection.active));
      if (t < 0) return this.problem(`Move the cursor onto some text in ${file}, or select some.`);
      const firstText = spans.visible(0) ? 0 : 1;
      from = Math.max(firstText, t - AROUND_CARET);
      to = Math.min(spans.count, t + AROUND_CARET + 1);
    } else {
      const document = editor.document;
      ({ from, to } = tokensInRange(
        spans,
        document.offsetAt(selection.start),
        document.offsetAt(selection.end),
      ));
      if (to <= from) return this.problem(`The selection in ${file} holds no tokens.`);
    }
    const params: EngineParams<'lensGrid'> = {
      document: analysis.uri,
      version: analysis.version,
      from,
      to,
      kind: this.lens === 'logit' ? 'logit' : this.lens === 'tuned' ? 'tuned' : 'attention-free',
      variant: this.lens === 'free-skip' ? 'skip' : 'self',
      tunedLens,
      top: TOP_K,
    };
    const cancel = new vscode.CancellationTokenSource();
    this.running = cancel;
    this.post({ type: 'busy', message: `Running the ${lensName(this.lens)} over ${to - from} tokens` });
    const t0 = performance.now();
    try {
      const r = await this.engine.client.request('lensGrid', params, { token: cancel.token });
      if (cancel.token.isCancellationRequested) return;
      const millis = performance.now() - t0;
      const columns = Array.from(r.positions, (token) => ({ token, text: spans.tokenText(token) }));
      const first = spans.range(r.positions[0]).start.line + 1;
      const last = spans.range(r.positions[r.positions.length - 1]).start.line + 1;
      const data: LensGridData = {
        file,
        where: first === last ? `line ${first}` : `lines ${first}–${last}`,
        lens: this.lens,
        tunedLens: tunedLens === null ? null : path.basename(tunedLens),
        layers: r.layers,
        nLayers: r.nLayers,
        columns,
        top: r.top,
        words: r.words,
        topWords: Array.from(r.topWords),
        topProbs: Array.from(r.topProbs),
        nextWords: Array.from(r.nextWords),
        nextProbs: Array.from(r.nextProbs),
        nextRanks: Array.from(r.nextRanks),
        entropy: Array.from(r.entropy),
        truncated: r.truncated,
        engineMillis: r.millis,
        millis,
      };
      this.post({ type: 'grid', data });
      this.log.info(
        `lens grid (${lensName(this.lens)}) of ${columns.length} tokens of ${file}: ${r.layers.length} layers, engine ${r.millis.toFixed(0)} ms, request to reply ${millis.toFixed(0)} ms`,
      );
    } catch (err) {
      if (cancel.token.isCancellationRequested) return;
      if (err instanceof EngineError && (err.cancelled || err.stale)) return; // a newer request follows
      const message = (err as Error).message;
      this.log.error(`lens grid: ${message}`);
      const tuned = this.lens === 'tuned' && /tuned lens|tuned-lens/.test(message);
      this.problem(
        sentence(message),
        tuned ? TUNED_ACTIONS : [{ command: 'loupe.showLog', label: 'Show Log' }],
      );
    } finally {
      if (this.running === cancel) this.running = null;
      cancel.dispose();
    }
  }

  /** The lens shown, also kept in the workspace's state for a panel opened anew. */
  private remember(lens: LensChoice): void {
    this.lens = lens;
    void this.memento.update(LENS_KEY, lens);
  }

  private problem(message: string, actions: LensAction[] = []): void {
    this.post({ type: 'problem', message, actions });
  }

  private post(message: HostToLensGrid): void {
    this.host.post(message);
  }
}

export function lensName(lens: LensChoice): string {
  switch (lens) {
    case 'logit':
      return 'logit lens';
    case 'tuned':
      return 'tuned lens';
    case 'free-self':
      return 'attention-free projection';
    case 'free-skip':
      return 'attention-free projection (no attention)';
  }
}

/** The engine's one-line errors start in lower case; the panel shows them as sentences. */
function sentence(message: string): string {
  return message.charAt(0).toUpperCase() + message.slice(1);
}
