/**
 * Per-token scores from the probe and causal commands drawn over a file: a
 * probe's probability (0…1, in the feature heat map's colours and levels)
 * or occlusion effects (signed: positive in the same warm colours, negative
 * in blue, each scaled by the largest magnitude). One such map at a time; a
 * status-bar item is its legend (what, where, the scale) and clears it on
 * click. An edit of the file clears it: the scores belong to the text they
 * were computed on.
 */
import * as vscode from 'vscode';
import { HEAT_LEVELS, heatColors, heatDecorationTypes, heatLevel, heatRamp } from './decorations';
import { escapeMarkdown } from './markdownText';

export interface ScoreMap {
  readonly document: vscode.TextDocument;
  readonly version: number;
  /** UTF-16 offsets in the document's text. */
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  readonly values: Float32Array;
  /** 'probability': 0…1; 'signed': around 0. */
  readonly kind: 'probability' | 'signed';
  /** One line for the legend: what the scores are. */
  readonly title: string;
  /** Extra lines for the legend's tooltip. */
  readonly details: readonly string[];
}

const CONTEXT_KEY = 'loupe.scoreMapActive';
/** Signed scores under this fraction of the largest magnitude are left untinted. */
const MIN_SIGNED = 0.04;

/** The negative side's colours, weakest first, per theme kind. */
function coolColors(kind: vscode.ColorThemeKind): string[] {
  const [rgb, lo, hi] =
    kind === vscode.ColorThemeKind.Light || kind === vscode.ColorThemeKind.HighContrastLight
      ? ['0, 102, 204', 0.12, 0.55]
      : ['64, 156, 255', 0.18, 0.65];
  return heatRamp(rgb, lo, hi);
}

export class ScoreHeatMap implements vscode.Disposable {
  private map: ScoreMap | null = null;
  private warm: vscode.TextEditorDecorationType[] = [];
  private cool: vscode.TextEditorDecorationType[] = [];
  private readonly status = vscode.window.createStatusBarItem(
    'loupe.scoreMap',
    vscode.StatusBarAlignment.Right,
    99,
  );
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor() {
    this.status.name = 'Loupe Score Heat Map';
    this.status.command = 'loupe.clearScoreHeatMap';
    this.build();
    this.subscriptions.push(
      vscode.window.onDidChangeVisibleTextEditors(() => this.drawAll()),
      vscode.window.onDidChangeActiveColorTheme(() => {
        this.build();
        this.drawAll();
      }),
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (this.map && e.document === this.map.document && e.contentChanges.length > 0) this.clear();
      }),
    );
  }

  show(map: ScoreMap): void {
    this.map = map;
    void vscode.commands.executeCommand('setContext', CONTEXT_KEY, true);
    this.drawAll();
    const max = this.scale(map);
    this.status.text =
      map.kind === 'probability'
        ? `$(symbol-color) ${map.title}: 0 → 1`
        : `$(symbol-color) ${map.title}: ±${max.toPrecision(3)}`;
    // HTML for the colour swatches only; the title and details hold text from the file and the probe, escaped.
    const tip = new vscode.MarkdownString();
    tip.supportHtml = true;
    const swatch = (c: string) => `<span style="background-color:${c};">&nbsp;&nbsp;&nbsp;&nbsp;</span>`;
    const colours = heatColors(vscode.window.activeColorTheme.kind);
    const scale =
      map.kind === 'probability'
        ? `0 ${colours.map(swatch).join('')} 1`
        : `−${max.toPrecision(3)} ${[...coolColors(vscode.window.activeColorTheme.kind)].reverse().map(swatch).join('')} 0 ${colours.map(swatch).join('')} +${max.toPrecision(3)}`;
    const details = map.details.filter((d) => d !== '').map(escapeMarkdown);
    tip.appendMarkdown(
      `**${escapeMarkdown(map.title)}**\n\n${scale}\n\n${details.join('\n\n')}\n\nClick to clear.`,
    );
    this.status.tooltip = tip;
    this.status.show();
  }

  clear(): void {
    this.map = null;
    void vscode.commands.executeCommand('setContext', CONTEXT_KEY, false);
    this.status.hide();
    this.drawAll();
  }

  dispose(): void {
    for (const d of [...this.subscriptions, ...this.warm, ...this.cool, this.status]) d.dispose();
  }

  private scale(map: ScoreMap): number {
    if (map.kind === 'probability') return 1;
    let max = 0;
    for (const v of map.values) max = Math.max(max, Math.abs(v));
    return max > 0 ? max : 1;
  }

  private drawAll(): void {
    for (const editor of vscode.window.visibleTextEditors) this.draw(editor);
  }

  private draw(editor: vscode.TextEditor): void {
    const warm: vscode.Range[][] = this.warm.map(() => []);
    const cool: vscode.Range[][] = this.cool.map(() => []);
    const map = this.map;
    if (map && editor.document === map.document && editor.document.version === map.version) {
      const max = this.scale(map);
      for (let i = 0; i < map.values.length; i++) {
        if (map.ends[i] <= map.starts[i]) continue; // BOS covers no text
        const v = map.values[i];
        // Faint scores would tint every token: a probe's improbable ones, occlusion's negligible ones.
        if (Math.abs(v) < max * (map.kind === 'probability' ? 1 / HEAT_LEVELS : MIN_SIGNED)) continue;
        const level = heatLevel(Math.abs(v), max);
        if (level === 0) continue;
        const range = new vscode.Range(
          map.document.positionAt(map.starts[i]),
          map.document.positionAt(map.ends[i]),
        );
        (v > 0 ? warm : cool)[level - 1].push(range);
      }
    }
    this.warm.forEach((t, k) => editor.setDecorations(t, warm[k]));
    this.cool.forEach((t, k) => editor.setDecorations(t, cool[k]));
  }

  private build(): void {
    for (const t of [...this.warm, ...this.cool]) t.dispose();
    const kind = vscode.window.activeColorTheme.kind;
    const make = (colors: string[]) => heatDecorationTypes(colors, vscode.OverviewRulerLane.Center, false);
    this.warm = make(heatColors(kind));
    this.cool = make(coolColors(kind));
  }
}
