/**
 * The editor the lens views follow (the Lens Grid, the Heads panel, attention
 * in the editor): the text editor the user last worked in — kept while a
 * panel has the focus — its tokens, and its selection. `onDidChange` fires,
 * debounced, when the selection moves, when a new analysis of the file
 * arrives, or when another editor becomes the one followed.
 *
 * The views need only the tokens (the engine keeps the tokenized document),
 * not the SAE's features, so they update as soon as the tokens are in.
 */
import * as vscode from 'vscode';
import { Analysis, DocumentAnalyses, isAnalysable } from './analyses';
import { EngineState } from './engineState';

export interface FollowedEditor {
  readonly editor: vscode.TextEditor;
  /** The tokens of exactly the editor's version, or undefined while they are on their way. */
  readonly analysis: Analysis | undefined;
}

export class LensEditor implements vscode.Disposable {
  private last: vscode.TextEditor | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly analyses: DocumentAnalyses,
    engine: EngineState,
    /** How long the selection must rest before the views follow it. */
    private readonly debounceMs: number,
  ) {
    this.last = followable(vscode.window.activeTextEditor);
    this.subscriptions.push(
      vscode.window.onDidChangeActiveTextEditor((e) => {
        const next = followable(e);
        if (next && next !== this.last) {
          this.last = next;
          this.fire(0);
        }
      }),
      vscode.window.onDidChangeTextEditorSelection((e) => {
        if (e.textEditor === this.last) this.fire(this.debounceMs);
      }),
      analyses.onDidAnalyse((a) => {
        if (a.uri === this.last?.document.uri.toString() && !a.ready) this.fire(0);
      }),
      vscode.workspace.onDidCloseTextDocument((d) => {
        if (d === this.last?.document) {
          this.last = undefined;
          this.fire(0);
        }
      }),
      engine.onDidChange(() => this.fire(0)),
    );
  }

  /** The editor followed now, with its tokens when they are in; undefined when there is none. */
  get current(): FollowedEditor | undefined {
    const editor = this.last;
    if (!editor || editor.document.isClosed) return undefined;
    return { editor, analysis: this.analyses.get(editor.document) };
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const d of this.subscriptions) d.dispose();
    this.changed.dispose();
  }

  private fire(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.changed.fire(), delayMs);
  }
}

function followable(editor: vscode.TextEditor | undefined): vscode.TextEditor | undefined {
  return editor && isAnalysable(editor.document) ? editor : undefined;
}

/** Tokens whose spans overlap the UTF-16 range [start, end), as [from, to); empty when none does. */
export function tokensInRange(
  spans: { readonly starts: Int32Array; readonly ends: Int32Array; firstEndingAfter(o: number): number },
  start: number,
  end: number,
): { from: number; to: number } {
  const from = spans.firstEndingAfter(start);
  let to = from;
  while (to < spans.starts.length && spans.starts[to] < end) to++;
  return { from, to };
}
