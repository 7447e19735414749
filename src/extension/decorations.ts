/**
 * What Loupe draws in the editor: token boundaries (alternate tokens lightly
 * tinted, so each token's extent shows without moving any text), an outline
 * around the token the inspector describes, and feature heat maps (each
 * token tinted by its activation / the file's maximum, in HEAT_LEVELS steps
 * of opacity). Colours follow the theme: the tint is a contributed theme
 * colour, the heat colour is chosen per theme kind and rebuilt when the theme
 * changes (a decoration's colour cannot carry a variable opacity otherwise).
 */
import * as vscode from 'vscode';
import { TokenSpans } from './tokenSpans';

export const HEAT_LEVELS = 8;
/**
 * Lines drawn beyond those in view, above and below. Decorating a whole
 * 10,000-token file costs the extension host tens of milliseconds per draw;
 * the lines around the view cost a few, and scrolling within the margin
 * needs no redraw.
 */
const MARGIN_LINES = 150;

/** A stretch of a file that was drawn: lines [firstLine, lastLine], offsets [from, to). */
export interface DrawnStretch {
  readonly version: number;
  readonly firstLine: number;
  readonly lastLine: number;
  readonly from: number;
  readonly to: number;
}

/** The lines in view plus the margin, for an editor showing `spans`' text. */
export function stretchInView(editor: vscode.TextEditor, spans: TokenSpans, version: number): DrawnStretch {
  const visible = editor.visibleRanges;
  const lines = spans.lines;
  const firstLine = Math.max(0, (visible[0]?.start.line ?? 0) - MARGIN_LINES);
  const lastLine = Math.min(lines.lineCount - 1, (visible[visible.length - 1]?.end.line ?? 0) + MARGIN_LINES);
  const to =
    lastLine + 1 < lines.lineCount ? lines.offsetAt({ line: lastLine + 1, character: 0 }) : spans.text.length;
  return { version, firstLine, lastLine, from: lines.offsetAt({ line: firstLine, character: 0 }), to };
}

/** Whether what is in view now lies within a stretch drawn earlier. */
export function covers(stretch: DrawnStretch | undefined, editor: vscode.TextEditor): boolean {
  const visible = editor.visibleRanges;
  if (!stretch || visible.length === 0) return false;
  return (
    visible[0].start.line >= stretch.firstLine && visible[visible.length - 1].end.line <= stretch.lastLine
  );
}

/** The heat map's colour at each level, weakest first, for a theme kind; the inspector's legend shows the same. */
export function heatColors(kind: vscode.ColorThemeKind): string[] {
  const [rgb, lo, hi] =
    kind === vscode.ColorThemeKind.Light
      ? ['242, 106, 0', 0.14, 0.6]
      : kind === vscode.ColorThemeKind.HighContrastLight
        ? ['185, 70, 0', 0.2, 0.7]
        : kind === vscode.ColorThemeKind.HighContrast
          ? ['255, 196, 0', 0.25, 0.75]
          : ['255, 149, 20', 0.16, 0.62];
  return heatRamp(rgb, lo, hi);
}

/** HEAT_LEVELS tints of one colour (an `r, g, b` triplet), from opacity `lo` to `hi`. */
export function heatRamp(rgb: string, lo: number, hi: number): string[] {
  return Array.from(
    { length: HEAT_LEVELS },
    (_, i) => `rgba(${rgb}, ${(lo + ((hi - lo) * i) / (HEAT_LEVELS - 1)).toFixed(3)})`,
  );
}

/** 0 for no activation, else 1..HEAT_LEVELS by act / max. */
export function heatLevel(act: number, max: number): number {
  if (!(act > 0) || !(max > 0)) return 0;
  return 1 + Math.min(HEAT_LEVELS - 1, Math.floor((act / max) * HEAT_LEVELS));
}

export function toRange(spans: TokenSpans, i: number): vscode.Range {
  const { start, end } = spans.range(i);
  return new vscode.Range(start.line, start.character, end.line, end.character);
}

export class TokenDecorations implements vscode.Disposable {
  private readonly alternate = vscode.window.createTextEditorDecorationType({
    backgroundColor: new vscode.ThemeColor('loupe.tokenAlternateBackground'),
    rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
  });
  private readonly current = vscode.window.createTextEditorDecorationType({
    outlineColor: new vscode.ThemeColor('loupe.inspectedTokenBorder'),
    outlineStyle: 'solid',
    outlineWidth: '1px',
    rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
  });
  private heat: vscode.TextEditorDecorationType[] = [];
  private readonly themeListener: vscode.Disposable;
  private readonly rebuilt = new vscode.EventEmitter<void>();
  /** The heat colours changed with the theme: heat maps must be drawn again. */
  readonly onDidRebuildHeat = this.rebuilt.event;

  constructor() {
    this.buildHeat();
    this.themeListener = vscode.window.onDidChangeActiveColorTheme(() => {
      this.buildHeat();
      this.rebuilt.fire();
    });
  }

  get heatColors(): string[] {
    return heatColors(vscode.window.activeColorTheme.kind);
  }

  /** Tints every other token (by index, so the pattern does not shift as the stretch moves) in a stretch; null clears. */
  drawBoundaries(editor: vscode.TextEditor, spans: TokenSpans | null, stretch: DrawnStretch | null): void {
    const odd: vscode.Range[] = [];
    if (spans && stretch) {
      for (
        let i = spans.firstEndingAfter(stretch.from);
        i < spans.count && spans.starts[i] < stretch.to;
        i++
      ) {
        if (i % 2 === 1 && spans.visible(i)) odd.push(toRange(spans, i));
      }
    }
    editor.setDecorations(this.alternate, odd);
  }

  drawCurrent(editor: vscode.TextEditor, range: vscode.Range | null): void {
    editor.setDecorations(this.current, range ? [range] : []);
  }

  /**
   * Tints each token by acts[i] / max; null clears. The stronger half of the
   * levels is drawn over the whole file (it marks the scroll bar, where
   * occurrences are found), the weaker half only in the stretch.
   */
  drawHeat(
    editor: vscode.TextEditor,
    spans: TokenSpans | null,
    acts: Float32Array | null,
    max: number,
    stretch: DrawnStretch | null,
  ): void {
    const levels: vscode.Range[][] = this.heat.map(() => []);
    if (spans && acts && stretch) {
      for (let i = 0; i < spans.count; i++) {
        const level = heatLevel(acts[i], max);
        if (level === 0 || !spans.visible(i)) continue;
        const near = spans.ends[i] > stretch.from && spans.starts[i] < stretch.to;
        if (near || level > HEAT_LEVELS / 2) levels[level - 1].push(toRange(spans, i));
      }
    }
    this.heat.forEach((type, k) => editor.setDecorations(type, levels[k]));
  }

  dispose(): void {
    this.themeListener.dispose();
    this.rebuilt.dispose();
    for (const t of [this.alternate, this.current, ...this.heat]) t.dispose();
  }

  private buildHeat(): void {
    for (const t of this.heat) t.dispose();
    const kind = vscode.window.activeColorTheme.kind;
    this.heat = heatDecorationTypes(heatColors(kind), vscode.OverviewRulerLane.Center, isHighContrast(kind));
  }
}

export function isHighContrast(kind: vscode.ColorThemeKind): boolean {
  return kind === vscode.ColorThemeKind.HighContrast || kind === vscode.ColorThemeKind.HighContrastLight;
}

/**
 * One decoration type per heat level, weakest first: the stronger half also
 * marks the scroll bar in `lane` (so where it fires can be found at a glance)
 * and, with `outline`, is outlined too, for high-contrast themes where a tint
 * is not enough.
 */
export function heatDecorationTypes(
  colors: readonly string[],
  lane: vscode.OverviewRulerLane,
  outline: boolean,
): vscode.TextEditorDecorationType[] {
  return colors.map((backgroundColor, k) => {
    const strong = k + 1 > HEAT_LEVELS / 2;
    return vscode.window.createTextEditorDecorationType({
      backgroundColor,
      overviewRulerColor: strong ? colors[HEAT_LEVELS - 1] : undefined,
      overviewRulerLane: lane,
      ...(outline && strong
        ? {
            outlineColor: new vscode.ThemeColor('contrastActiveBorder'),
            outlineStyle: 'dotted',
            outlineWidth: '1px',
          }
        : {}),
      rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
    });
  });
}
