/**
 * The feature heat map: one chosen feature's activation on every token of
 * the files in view, drawn as decorations, with next/previous occurrence.
 * The feature stays chosen across files and edits; each new analysis of a
 * file in view fetches the feature's activations for it again.
 */
import * as vscode from 'vscode';
import { HeatMapLegend } from '../webview/protocol';
import { Analysis, DocumentAnalyses } from './analyses';
import { DrawnStretch, TokenDecorations, covers, stretchInView, toRange } from './decorations';
import { EngineError } from './engineClient';
import { EngineState } from './engineState';
import { LagProbe } from './lagProbe';
import { layerOfFeature } from '../shared/featureNames';

interface FeatureMap {
  readonly analysis: Analysis;
  readonly acts: Float32Array;
  readonly max: number;
  readonly activeTokens: number;
}

const CONTEXT_KEY = 'loupe.heatMapActive';

export class HeatMap implements vscode.Disposable {
  private feature: { index: number; label: string | null } | null = null;
  private readonly maps = new Map<string, FeatureMap>();
  private readonly drawn = new WeakMap<vscode.TextEditor, DrawnStretch>();
  private readonly subscriptions: vscode.Disposable[] = [];
  private readonly changed = new vscode.EventEmitter<void>();
  /** The feature or the active file's map changed: the legend must be shown again. */
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly engine: EngineState,
    private readonly analyses: DocumentAnalyses,
    private readonly decorations: TokenDecorations,
    private readonly probe: LagProbe,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.subscriptions.push(
      analyses.onDidAnalyse((a) => a.ready && this.feature && void this.fetch(a)),
      vscode.window.onDidChangeVisibleTextEditors(() => this.drawAll()),
      vscode.window.onDidChangeTextEditorVisibleRanges((e) => {
        if (this.feature && !covers(this.drawn.get(e.textEditor), e.textEditor)) this.draw(e.textEditor);
      }),
      vscode.window.onDidChangeActiveTextEditor(() => this.changed.fire()),
      decorations.onDidRebuildHeat(() => {
        this.drawAll();
        this.changed.fire();
      }),
      engine.onDidChange((s) => s.kind !== 'ready' && this.feature && this.clear()),
    );
  }

  get active(): boolean {
    return this.feature !== null;
  }

  /** Shows feature `index` over every analysed file in view. */
  async show(index: number): Promise<void> {
    const status = this.engine.status;
    if (status.kind !== 'ready' || !status.sae) {
      void vscode.window.showWarningMessage('Loupe: a heat map needs an SAE; load one first.');
      return;
    }
    if (index >= status.sae.dSae) {
      void vscode.window.showWarningMessage(
        `Loupe: the SAE has ${status.sae.dSae} features; there is no #${index}.`,
      );
      return;
    }
    this.feature = { index, label: null };
    this.maps.clear();
    void vscode.commands.executeCommand('setContext', CONTEXT_KEY, true);
    const shown = new Set(vscode.window.visibleTextEditors.map((e) => e.document));
    await Promise.all(
      [...shown].map((d) => this.analyses.ready(d)).flatMap((a) => (a ? [this.fetch(a)] : [])),
    );
    this.changed.fire();
  }

  clear(): void {
    this.feature = null;
    this.maps.clear();
    void vscode.commands.executeCommand('setContext', CONTEXT_KEY, false);
    this.drawAll();
    this.changed.fire();
  }

  /** The legend for the active editor's file, or null when no heat map is shown. */
  legend(): HeatMapLegend | null {
    if (!this.feature) return null;
    const document = vscode.window.activeTextEditor?.document;
    const map = document ? this.maps.get(document.uri.toString()) : undefined;
    const status = this.engine.status;
    return {
      feature: this.feature.index,
      ...layerOfFeature(
        this.feature.index,
        status.kind === 'ready' ? (status.sae?.layerWidth ?? null) : null,
      ),
      label: this.feature.label,
      max: map?.max ?? null,
      activeTokens: map?.activeTokens ?? null,
      colors: this.decorations.heatColors,
    };
  }

  /** Moves the cursor to the next (or previous) token where the feature is active, wrapping around. */
  navigate(direction: 'next' | 'previous'): void {
    const editor = vscode.window.activeTextEditor;
    if (!editor || !this.feature) return;
    const map = this.maps.get(editor.document.uri.toString());
    if (!map || map.analysis.version !== editor.document.version) {
      void vscode.window.setStatusBarMessage('Loupe: the heat map is being updated', 2000);
      return;
    }
    if (map.activeTokens === 0) {
      void vscode.window.setStatusBarMessage(
        `Loupe: feature #${this.feature.index} is not active in this file`,
        3000,
      );
      return;
    }
    const { spans } = map.analysis;
    const here = editor.document.offsetAt(editor.selection.active);
    const current = spans.tokenAt(here);
    const n = spans.count;
    const step = direction === 'next' ? 1 : -1;
    const from = current >= 0 ? current : direction === 'next' ? -1 : n;
    for (let k = 1; k <= n; k++) {
      const i = (((from + step * k) % n) + n) % n;
      if (map.acts[i] > 0 && spans.visible(i)) {
        const range = toRange(spans, i);
        // The caret at the token's start (nothing selected, so typing cannot replace it): the inspector describes it.
        editor.selection = new vscode.Selection(range.start, range.start);
        editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
        return;
      }
    }
  }

  dispose(): void {
    for (const d of this.subscriptions) d.dispose();
    this.changed.dispose();
  }

  private async fetch(analysis: Analysis): Promise<void> {
    const feature = this.feature;
    if (!feature || !analysis.hasFeatures) return;
    try {
      const r = await this.engine.client.request('featureMap', {
        document: analysis.uri,
        version: analysis.version,
        feature: feature.index,
      });
      if (this.feature !== feature) return; // another feature was chosen meanwhile
      feature.label = r.label;
      this.maps.set(analysis.uri, { analysis, acts: r.acts, max: r.max, activeTokens: r.activeTokens });
      this.drawAll();
      this.changed.fire();
    } catch (err) {
      if (err instanceof EngineError && (err.stale || err.cancelled)) return;
      this.log.error(`heat map of feature #${feature.index}: ${(err as Error).message}`);
    }
  }

  private drawAll(): void {
    for (const editor of vscode.window.visibleTextEditors) this.draw(editor);
  }

  private draw(editor: vscode.TextEditor): void {
    const map = this.feature ? this.maps.get(editor.document.uri.toString()) : undefined;
    // Drawn for an older version, the decorations have moved with the edits; the next analysis redraws them.
    if (map && map.analysis.version !== editor.document.version) return;
    this.probe.measure('drawing a heat map', () => {
      const stretch = map ? stretchInView(editor, map.analysis.spans, map.analysis.version) : null;
      this.decorations.drawHeat(
        editor,
        map?.analysis.spans ?? null,
        map?.acts ?? null,
        map?.max ?? 0,
        stretch,
      );
      if (stretch) this.drawn.set(editor, stretch);
      else this.drawn.delete(editor);
    });
  }
}
