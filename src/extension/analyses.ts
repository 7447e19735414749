/**
 * Analyses of the documents in the editor, one per document version: the
 * active document is analysed when it is shown and, debounced, while it is
 * edited. An analysis still running for an older version is cancelled, a
 * result for a version that has since changed is dropped, and everything is
 * redone when the engine loads another model or SAE.
 *
 * An analysis arrives in two steps, each announced by `onDidAnalyse`: the
 * tokens (a tokenizer pass, so the token overlay shows at once even on a busy
 * machine), then the features (the model and SAE over every window), after
 * which the inspector, hover and heat map can answer.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EngineError } from './engineClient';
import { EngineState } from './engineState';
import { LagProbe } from './lagProbe';
import { TokenSpans } from './tokenSpans';

/** Quiet time after the last edit before the document is analysed again. */
const EDIT_DEBOUNCE_MS = 300;
/** Larger documents are not analysed (tens of thousands of windows); the status bar says so. */
export const MAX_DOCUMENT_CHARS = 1_000_000;

export interface Analysis {
  readonly uri: string;
  readonly version: number;
  /** The engine load it was made with. */
  readonly generation: number;
  readonly spans: TokenSpans;
  /** The model and SAE have run over it: features and predictions can be asked for. */
  readonly ready: boolean;
  /** An SAE is loaded, so tokens have features (known once ready). */
  readonly hasFeatures: boolean;
}

export type AnalysisState =
  | { readonly kind: 'idle' }
  | { readonly kind: 'running'; readonly uri: string }
  | { readonly kind: 'skipped'; readonly uri: string; readonly reason: string }
  | { readonly kind: 'done'; readonly analysis: Analysis; readonly millis: number }
  | { readonly kind: 'failed'; readonly uri: string; readonly message: string };

export function isAnalysable(document: vscode.TextDocument): boolean {
  return document.uri.scheme === 'file' || document.uri.scheme === 'untitled';
}

export class DocumentAnalyses implements vscode.Disposable {
  private readonly results = new Map<string, Analysis>();
  private readonly running = new Map<string, { version: number; cancel: vscode.CancellationTokenSource }>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly analysed = new vscode.EventEmitter<Analysis>();
  private readonly stateChanged = new vscode.EventEmitter<AnalysisState>();
  private readonly reset = new vscode.EventEmitter<void>();
  private readonly subscriptions: vscode.Disposable[] = [];
  /** Fired after a fresh analysis arrives (listeners draw it); the time it took is logged afterwards. */
  readonly onDidAnalyse = this.analysed.event;
  readonly onDidChangeState = this.stateChanged.event;
  /** Every analysis was dropped (the model failed to load): what was drawn from them must go. */
  readonly onDidReset = this.reset.event;
  private lastState: AnalysisState = { kind: 'idle' };

  constructor(
    private readonly engine: EngineState,
    private readonly log: vscode.LogOutputChannel,
    private readonly probe: LagProbe,
  ) {
    this.subscriptions.push(
      vscode.window.onDidChangeActiveTextEditor((e) => e && this.schedule(e.document, 0)),
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (e.contentChanges.length > 0 && isShown(e.document)) this.schedule(e.document, EDIT_DEBOUNCE_MS);
      }),
      vscode.workspace.onDidCloseTextDocument((d) => this.forget(d.uri.toString())),
      engine.onDidChange((s) => {
        if (s.kind === 'loading') this.cancelAll();
        if (s.kind === 'failed') {
          this.cancelAll();
          this.results.clear();
          this.setState({ kind: 'idle' });
          this.reset.fire();
        }
        if (s.kind !== 'ready') return;
        // The drawings of the previous load stay until the new analyses replace them, without flicker.
        this.results.clear();
        this.analyseActive();
      }),
    );
  }

  get state(): AnalysisState {
    return this.lastState;
  }

  /** The analysis of exactly this version of the document, tokens only or complete, if there is one. */
  get(document: vscode.TextDocument): Analysis | undefined {
    const a = this.results.get(document.uri.toString());
    const status = this.engine.status;
    if (!a || a.version !== document.version) return undefined;
    if (status.kind !== 'ready' || status.generation !== a.generation) return undefined;
    return a;
  }

  /** The complete analysis (features too) of exactly this version of the document, if there is one. */
  ready(document: vscode.TextDocument): Analysis | undefined {
    const a = this.get(document);
    return a?.ready ? a : undefined;
  }

  /** The latest analysis of a document, whatever its version (decorations drawn from it move with edits). */
  latest(document: vscode.TextDocument): Analysis | undefined {
    return this.results.get(document.uri.toString());
  }

  analyseActive(): void {
    const editor = vscode.window.activeTextEditor;
    if (editor) this.schedule(editor.document, 0);
  }

  dispose(): void {
    this.cancelAll();
    for (const d of this.subscriptions) d.dispose();
    this.analysed.dispose();
    this.stateChanged.dispose();
    this.reset.dispose();
  }

  private schedule(document: vscode.TextDocument, delayMs: number): void {
    if (!isAnalysable(document)) return;
    const uri = document.uri.toString();
    clearTimeout(this.timers.get(uri));
    this.timers.set(
      uri,
      setTimeout(() => {
        this.timers.delete(uri);
        void this.analyse(document);
      }, delayMs),
    );
  }

  private async analyse(document: vscode.TextDocument): Promise<void> {
    const status = this.engine.status;
    if (status.kind !== 'ready' || document.isClosed) return; // a load in progress analyses again when it is done
    const uri = document.uri.toString();
    const version = document.version;
    if (this.ready(document)) return;
    const run = this.running.get(uri);
    if (run?.version === version) return;
    run?.cancel.cancel();
    const name = path.basename(document.uri.path);
    const text = document.getText();
    if (text.length > MAX_DOCUMENT_CHARS) {
      this.setState({
        kind: 'skipped',
        uri,
        reason: `${name} has ${text.length.toLocaleString('en')} characters; Loupe analyses files up to ${MAX_DOCUMENT_CHARS.toLocaleString('en')}`,
      });
      return;
    }
    const cancel = new vscode.CancellationTokenSource();
    this.running.set(uri, { version, cancel });
    this.setState({ kind: 'running', uri });
    const lag = this.probe.track();
    const t0 = performance.now();
    const edited = (): boolean => document.isClosed || document.version !== version; // the newer version is scheduled
    try {
      const t = await this.engine.client.request(
        'tokenize',
        { document: uri, version, text },
        { token: cancel.token },
      );
      if (edited()) return;
      const tokens: Analysis = this.probe.measure('reading tokens', () => ({
        uri,
        version,
        generation: status.generation,
        spans: new TokenSpans(text, t.ids, t.starts, t.ends),
        ready: false,
        hasFeatures: false,
      }));
      this.results.set(uri, tokens);
      this.analysed.fire(tokens);
      const overlayMillis = performance.now() - t0;
      const r = await this.engine.client.request(
        'analyze',
        { document: uri, version },
        { token: cancel.token },
      );
      if (edited()) return;
      const analysis: Analysis = { ...tokens, ready: true, hasFeatures: r.hasFeatures };
      this.results.set(uri, analysis);
      this.analysed.fire(analysis);
      const millis = performance.now() - t0;
      this.setState({ kind: 'done', analysis, millis });
      this.log.info(
        `${name} v${version}: ${t.ids.length} tokens; overlay drawn ${fmt(overlayMillis)} ms after the request ` +
          `(tokenizing ${fmt(t.millis)} ms); ` +
          (r.hasFeatures
            ? `model + SAE over ${r.windows} window${r.windows === 1 ? '' : 's'}` +
              (r.windowsCached ? ` (${r.windowsCached} cached)` : '') +
              ` ${fmt(r.millis)} ms; features ready ${fmt(millis)} ms after the request`
            : 'no SAE to run') +
          `; the extension host's longest block meanwhile ${fmt(lag.stop())} ms`,
      );
    } catch (err) {
      if (err instanceof EngineError && (err.cancelled || err.stale)) return;
      const message = (err as Error).message;
      this.log.error(`${name}: analysis failed: ${message}`);
      this.setState({ kind: 'failed', uri, message });
    } finally {
      lag.stop();
      if (this.running.get(uri)?.cancel === cancel) this.running.delete(uri);
      cancel.dispose();
    }
  }

  private forget(uri: string): void {
    clearTimeout(this.timers.get(uri));
    this.timers.delete(uri);
    this.running.get(uri)?.cancel.cancel();
    this.running.delete(uri);
    this.results.delete(uri);
    this.engine.client.forget(uri);
  }

  private cancelAll(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const r of this.running.values()) r.cancel.cancel();
    this.running.clear();
  }

  private setState(state: AnalysisState): void {
    this.lastState = state;
    this.stateChanged.fire(state);
  }
}

function isShown(document: vscode.TextDocument): boolean {
  return vscode.window.visibleTextEditors.some((e) => e.document === document);
}

function fmt(ms: number): string {
  return ms.toFixed(0);
}
