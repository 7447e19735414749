/**
 * The overlay every analysed file gets: its token boundaries, drawn in each
 * editor that shows it as soon as its analysis arrives (unless switched off
 * with `loupe.showTokenBoundaries`), around the lines in view and again as
 * the editor scrolls away from what was drawn. A heat map replaces them while
 * it is shown (two tints on one token would read as neither).
 */
import * as vscode from 'vscode';
import { DocumentAnalyses } from './analyses';
import { affectsDisplay, readConfig } from './config';
import { DrawnStretch, TokenDecorations, covers, stretchInView } from './decorations';
import { HeatMap } from './heatMap';
import { LagProbe } from './lagProbe';

export class TokenOverlay implements vscode.Disposable {
  private readonly subscriptions: vscode.Disposable[];
  private readonly drawn = new WeakMap<vscode.TextEditor, DrawnStretch>();
  private enabled = readConfig().showTokenBoundaries;
  private heatMapShown = false;

  constructor(
    private readonly analyses: DocumentAnalyses,
    private readonly decorations: TokenDecorations,
    private readonly heatMap: HeatMap,
    private readonly probe: LagProbe,
  ) {
    this.subscriptions = [
      // Tokens are all the overlay needs: draw at the first step of an analysis, not again at the second.
      analyses.onDidAnalyse((a) => !a.ready && this.drawAll(a.uri)),
      analyses.onDidReset(() => this.drawAll()),
      heatMap.onDidChange(() => {
        if (heatMap.active === this.heatMapShown) return;
        this.heatMapShown = heatMap.active;
        this.drawAll();
      }),
      vscode.window.onDidChangeVisibleTextEditors(() => this.drawAll()),
      vscode.window.onDidChangeTextEditorVisibleRanges((e) => {
        if (!covers(this.drawn.get(e.textEditor), e.textEditor)) this.draw(e.textEditor);
      }),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (!affectsDisplay(e)) return;
        this.enabled = readConfig().showTokenBoundaries;
        this.drawAll();
      }),
    ];
  }

  dispose(): void {
    for (const d of this.subscriptions) d.dispose();
  }

  /** Draws the editors showing `uri`, or all visible editors. */
  private drawAll(uri?: string): void {
    for (const editor of vscode.window.visibleTextEditors) {
      if (!uri || editor.document.uri.toString() === uri) this.draw(editor);
    }
  }

  private draw(editor: vscode.TextEditor): void {
    const analysis = this.analyses.latest(editor.document);
    // An analysis of an older version was drawn before the edits and has moved with them; keep it.
    if (analysis && analysis.version !== editor.document.version) return;
    this.probe.measure('drawing token boundaries', () => {
      const shown = analysis && this.enabled && !this.heatMap.active;
      const stretch = shown ? stretchInView(editor, analysis.spans, analysis.version) : null;
      this.decorations.drawBoundaries(editor, analysis?.spans ?? null, stretch);
      if (stretch) this.drawn.set(editor, stretch);
      else this.drawn.delete(editor);
    });
  }
}
