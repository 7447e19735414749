/**
 * The Heads panel: a webview panel with a layer × head grid coloured by each
 * head's direct logit attribution to the prediction at the cursor (or to
 * "A and not B"), beside each head's text directions (TextSpan, computed on
 * demand over the model's held-out sample or a corpus, with progress and
 * cancel; the engine caches them). Clicking a head shows its attention in the
 * editor (attention.ts). src/webview/heads/main.ts draws it; it follows the
 * editor (lensEditor.ts) and comes back after a reload through its serializer.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  AttributionData,
  DirectionsState,
  HeadsToHost,
  HostToHeads,
  headsToHost,
} from '../webview/lensProtocol';
import { AttentionInEditor } from './attention';
import { EngineError } from './engineClient';
import { EngineState } from './engineState';
import { LensEditor } from './lensEditor';
import { WebviewPanelHost } from './webviewPanelHost';

const HEADS_VIEW = 'loupe.heads';
const TITLE = 'Heads';
/** Text directions per head (the authors' texts_per_head). */
const DIRECTIONS_PER_HEAD = 10;

export class HeadsPanel implements vscode.Disposable {
  private readonly host: WebviewPanelHost<HostToHeads, HeadsToHost>;
  private pair = { target: '', versus: '' };
  private attributing: vscode.CancellationTokenSource | null = null;
  private directions: DirectionsState = { kind: 'none' };
  /** The model the directions are for: they are dropped when another loads. */
  private directionsModel: string | null = null;
  private computing: vscode.CancellationTokenSource | null = null;
  /** The panel showed directions before a reload, and the model was not loaded yet: compute them once it is. */
  private directionsWanted = false;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    extensionUri: vscode.Uri,
    private readonly engine: EngineState,
    private readonly follow: LensEditor,
    private readonly attention: AttentionInEditor,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.host = new WebviewPanelHost(
      extensionUri,
      log,
      {
        viewType: HEADS_VIEW,
        title: TITLE,
        entry: 'heads',
        parse: (raw) => headsToHost.parse(raw),
        logName: 'heads panel',
        readyOnlyWhileVisible: true,
        replaceUnrevivedTabs: true,
      },
      { receive: (message) => this.receive(message), disposed: () => this.attributing?.cancel() },
    );
    this.subscriptions.push(
      follow.onDidChange(() => void this.attribute()),
      attention.onDidChange((c) =>
        this.post({ type: 'attention', layer: c?.layer ?? null, head: c?.head ?? null }),
      ),
      engine.onDidChange((s) => {
        const model = s.kind === 'ready' ? s.model.dir : null;
        if (model !== this.directionsModel && this.directions.kind !== 'running')
          this.setDirections({ kind: 'none' });
        this.postModel();
        if (s.kind === 'ready' && this.directionsWanted && this.directions.kind === 'none') {
          void this.computeDirections(null);
        }
      }),
    );
  }

  /** Opens (or reveals) the panel beside the editor, keeping the focus in the editor. */
  show(): void {
    this.host.show(vscode.ViewColumn.Beside, true);
  }

  dispose(): void {
    this.attributing?.cancel();
    this.computing?.cancel();
    this.host.dispose();
    for (const d of this.subscriptions) d.dispose();
  }

  private receive(message: HeadsToHost): void {
    switch (message.type) {
      case 'ready': {
        this.pair = { target: message.target, versus: message.versus };
        this.postModel();
        const c = this.attention.current;
        this.post({ type: 'attention', layer: c?.layer ?? null, head: c?.head ?? null });
        // It showed directions before (a reload): ask again; the engine's cache answers at once.
        if (message.directions && this.directions.kind === 'none') void this.computeDirections(null);
        else this.post({ type: 'directions', state: this.directions });
        void this.attribute();
        return;
      }
      case 'setPair':
        this.pair = { target: message.target, versus: message.versus };
        void this.attribute();
        return;
      case 'showAttention':
        this.attention.show({ layer: message.layer, head: message.head });
        return;
      case 'computeDirections':
        void this.chooseAndCompute(message.corpus);
        return;
      case 'cancelDirections':
        this.computing?.cancel();
        return;
      case 'run':
        this.host.runCommand(message.command);
        return;
    }
  }

  /** Direct logit attribution at the cursor's token, for the pair the panel asks for. */
  private async attribute(): Promise<void> {
    if (!this.host.ready) return;
    this.attributing?.cancel();
    this.attributing = null;
    const s = this.engine.status;
    if (s.kind !== 'ready') {
      return this.post({
        type: 'attributionProblem',
        message: s.kind === 'loading' ? `${s.message}…` : `No model is loaded: ${s.message}`,
      });
    }
    const followed = this.follow.current;
    if (!followed) {
      return this.post({
        type: 'attributionProblem',
        message:
          'Open a file and put the cursor on a token: the grid shows what each head writes into the prediction after it.',
      });
    }
    const { editor, analysis } = followed;
    if (!analysis) return this.post({ type: 'attributionBusy' });
    const { spans } = analysis;
    const token = spans.tokenAt(editor.document.offsetAt(editor.selection.active));
    if (token < 0 || !spans.visible(token)) {
      return this.post({ type: 'attributionProblem', message: 'Move the cursor onto a token of the file.' });
    }
    const cancel = new vscode.CancellationTokenSource();
    this.attributing = cancel;
    this.post({ type: 'attributionBusy' });
    try {
      const r = await this.engine.client.request(
        'logitAttribution',
        {
          document: analysis.uri,
          version: analysis.version,
          token,
          target: this.pair.target === '' ? null : this.pair.target,
          versus: this.pair.versus === '' ? null : this.pair.versus,
        },
        { token: cancel.token },
      );
      if (cancel.token.isCancellationRequested) return;
      const start = spans.range(token).start;
      const data: AttributionData = {
        file: path.basename(editor.document.uri.path),
        line: start.line + 1,
        column: start.character + 1,
        token: spans.tokenText(token),
        target: r.target.text,
        versus: r.versus?.text ?? null,
        logit: r.logit,
        cappedLogit: r.cappedLogit,
        total: r.total,
        embed: r.embed,
        posEmbed: r.posEmbed,
        constant: r.constant,
        heads: r.heads,
        mlp: r.mlp,
        attnBias: r.attnBias,
      };
      this.post({ type: 'attribution', data });
    } catch (err) {
      if (cancel.token.isCancellationRequested) return;
      if (err instanceof EngineError && (err.cancelled || err.stale)) return;
      const message = (err as Error).message;
      this.log.error(`heads panel: ${message}`);
      this.post({ type: 'attributionProblem', message: sentence(message) });
    } finally {
      if (this.attributing === cancel) this.attributing = null;
      cancel.dispose();
    }
  }

  private async chooseAndCompute(corpus: 'default' | 'choose'): Promise<void> {
    if (corpus === 'default') return this.computeDirections(null);
    const picked = await vscode.window.showOpenDialog({
      canSelectFiles: true,
      canSelectFolders: true,
      canSelectMany: false,
      openLabel: 'Read for Text Directions',
      title: 'Text directions: a folder of text files, a .jsonl with a "text" field per line, or a text file',
      defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
    });
    if (picked?.[0]) await this.computeDirections(picked[0].fsPath);
  }

  /** TextSpan for the loaded model over its held-out sample (corpus null) or a corpus, with progress in the panel and a notification. */
  private async computeDirections(corpus: string | null): Promise<void> {
    const s = this.engine.status;
    if (s.kind !== 'ready') {
      this.directionsWanted = corpus === null;
      return;
    }
    if (this.directions.kind === 'running') return;
    this.directionsWanted = false;
    const cancel = new vscode.CancellationTokenSource();
    this.computing = cancel;
    this.directionsModel = s.model.dir;
    this.setDirections({ kind: 'running', message: 'Starting', fraction: null });
    const t0 = performance.now();
    try {
      const r = await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Window,
          title: `Loupe: text directions of ${s.model.name}'s heads`,
        },
        (progress) =>
          this.engine.client.request(
            'headDirections',
            { corpus, maxTokens: null, steps: DIRECTIONS_PER_HEAD },
            {
              token: cancel.token,
              onProgress: (message, fraction) => {
                progress.report({ message });
                this.setDirections({ kind: 'running', message, fraction });
              },
            },
          ),
      );
      this.log.info(
        `text directions of ${s.model.name}: ${r.heads.length} heads over ${r.tokens} tokens of ${r.source}${r.cached ? ' (cached)' : ''} in ${(performance.now() - t0).toFixed(0)} ms`,
      );
      this.setDirections({
        kind: 'ready',
        data: { source: r.source, tokens: r.tokens, windows: r.windows, cached: r.cached, heads: r.heads },
      });
    } catch (err) {
      if (err instanceof EngineError && err.cancelled) {
        this.setDirections({ kind: 'none' });
        return;
      }
      const message = (err as Error).message;
      this.log.error(`text directions: ${message}`);
      this.setDirections({ kind: 'failed', message: sentence(message) });
    } finally {
      if (this.computing === cancel) this.computing = null;
      cancel.dispose();
    }
  }

  private setDirections(state: DirectionsState): void {
    this.directions = state;
    this.post({ type: 'directions', state });
  }

  private postModel(): void {
    const s = this.engine.status;
    this.post(
      s.kind === 'ready'
        ? { type: 'model', name: s.model.name, nLayers: s.model.nLayers, nHeads: s.model.nHeads }
        : { type: 'model', name: null, nLayers: 0, nHeads: 0 },
    );
  }

  private post(message: HostToHeads): void {
    this.host.post(message);
  }
}

function sentence(message: string): string {
  return message.charAt(0).toUpperCase() + message.slice(1);
}
