/**
 * Attention in the editor: with a layer and head chosen ("Loupe: Show
 * Attention…", or a click in the Heads panel), the tokens that the token at
 * the cursor attends to light up in the file, each tinted by its weight
 * relative to the strongest key the file shows (BOS, which is not text,
 * is left out and its share named in the status bar); the cursor's token is
 * underlined. "All heads of a layer" shows the mean of the layer's heads.
 *
 * Weights come from the engine's `attention` request over the analysis
 * window that holds the token, so they are what the model saw. The tint is
 * its own hue (the heat map's orange may be shown at the same time), chosen
 * per theme kind and rebuilt when the theme changes, in HEAT_LEVELS steps of
 * opacity as the heat map's; ranges come from the same token spans.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { HEAT_LEVELS, heatDecorationTypes, heatRamp, isHighContrast, toRange } from './decorations';
import { EngineError } from './engineClient';
import { EngineState } from './engineState';
import { LensEditor } from './lensEditor';
import { escapeMarkdown } from './markdownText';
import { TokenSpans } from './tokenSpans';

const CONTEXT_KEY = 'loupe.attentionActive';
/** Keys weaker than this share of the strongest are not tinted, so the file does not turn faintly blue all over. */
const MIN_RELATIVE = 1 / 16;

export interface AttentionChoice {
  readonly layer: number;
  /** null: all heads of the layer (their mean). */
  readonly head: number | null;
}

/** The attention tint at each level, weakest first, for a theme kind. */
export function attentionColors(kind: vscode.ColorThemeKind): { levels: string[]; solid: string } {
  const [rgb, lo, hi] =
    kind === vscode.ColorThemeKind.Light
      ? ['0, 110, 220', 0.12, 0.5]
      : kind === vscode.ColorThemeKind.HighContrastLight
        ? ['0, 70, 170', 0.18, 0.6]
        : kind === vscode.ColorThemeKind.HighContrast
          ? ['0, 200, 255', 0.25, 0.7]
          : ['60, 160, 255', 0.16, 0.58];
  return {
    levels: heatRamp(rgb, lo, hi),
    solid: `rgb(${rgb})`,
  };
}

/** 0 for none, else 1..HEAT_LEVELS by weight / strongest. */
export function attentionLevel(weight: number, strongest: number): number {
  if (!(strongest > 0) || !(weight >= strongest * MIN_RELATIVE)) return 0;
  return Math.max(1, Math.min(HEAT_LEVELS, Math.ceil((weight / strongest) * HEAT_LEVELS)));
}

export class AttentionInEditor implements vscode.Disposable {
  private choice: AttentionChoice | null = null;
  private levels: vscode.TextEditorDecorationType[] = [];
  private query!: vscode.TextEditorDecorationType;
  private drawnOn: vscode.TextEditor | undefined;
  private running: vscode.CancellationTokenSource | null = null;
  private readonly status = vscode.window.createStatusBarItem(
    'loupe.attention',
    vscode.StatusBarAlignment.Right,
    99,
  );
  private readonly subscriptions: vscode.Disposable[] = [];
  private readonly changed = new vscode.EventEmitter<AttentionChoice | null>();
  /** Another head (or none) is shown. */
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly engine: EngineState,
    private readonly follow: LensEditor,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.status.name = 'Loupe Attention';
    this.status.command = 'loupe.showAttention';
    this.build();
    this.subscriptions.push(
      follow.onDidChange(() => void this.update()),
      vscode.window.onDidChangeActiveColorTheme(() => {
        this.build();
        void this.update();
      }),
      // Another model may have other layers and heads.
      engine.onDidChange((s) => s.kind !== 'ready' && this.choice && this.clear()),
    );
  }

  get current(): AttentionChoice | null {
    return this.choice;
  }

  show(choice: AttentionChoice): void {
    this.choice = choice;
    void vscode.commands.executeCommand('setContext', CONTEXT_KEY, true);
    this.changed.fire(choice);
    void this.update();
  }

  clear(): void {
    this.running?.cancel();
    this.choice = null;
    void vscode.commands.executeCommand('setContext', CONTEXT_KEY, false);
    this.status.hide();
    this.erase();
    this.changed.fire(null);
  }

  dispose(): void {
    this.running?.cancel();
    for (const d of this.subscriptions) d.dispose();
    for (const t of [...this.levels, this.query]) t.dispose();
    this.status.dispose();
    this.changed.dispose();
  }

  private async update(): Promise<void> {
    const choice = this.choice;
    if (!choice) return;
    this.running?.cancel();
    const name = choiceName(choice);
    const followed = this.follow.current;
    if (this.drawnOn && this.drawnOn !== followed?.editor) this.erase();
    if (!followed?.analysis) {
      this.note(`$(eye) ${name}`, `${name}: waiting for the file's tokens.`);
      return;
    }
    const { editor, analysis } = followed;
    const { spans } = analysis;
    const token = spans.tokenAt(editor.document.offsetAt(editor.selection.active));
    if (token < 0 || !spans.visible(token)) {
      this.erase();
      this.note(`$(eye) ${name}`, `${name}: put the cursor on a token to see where it attends.`);
      return;
    }
    const cancel = new vscode.CancellationTokenSource();
    this.running = cancel;
    try {
      const r = await this.engine.client.request(
        'attention',
        { document: analysis.uri, version: analysis.version, token, layer: choice.layer, head: choice.head },
        { token: cancel.token },
      );
      if (cancel.token.isCancellationRequested || this.choice !== choice) return;
      const n = r.keys.length;
      const weights = new Float32Array(n);
      for (let h = 0; h < r.heads; h++)
        for (let k = 0; k < n; k++) weights[k] += r.weights[h * n + k] / r.heads;
      this.draw(editor, spans, r.keys, weights, token);
      this.describe(choice, spans, r.keys, weights, token, path.basename(editor.document.uri.path));
    } catch (err) {
      if (cancel.token.isCancellationRequested) return;
      if (err instanceof EngineError && (err.cancelled || err.stale)) return;
      const message = (err as Error).message;
      this.log.error(`attention ${name}: ${message}`);
      this.erase();
      this.note(`$(warning) ${name}`, `${name}: ${message}`);
    } finally {
      if (this.running === cancel) this.running = null;
      cancel.dispose();
    }
  }

  private draw(
    editor: vscode.TextEditor,
    spans: TokenSpans,
    keys: Int32Array,
    weights: Float32Array,
    query: number,
  ): void {
    let strongest = 0;
    keys.forEach((t, k) => {
      if (spans.visible(t)) strongest = Math.max(strongest, weights[k]);
    });
    const ranges: vscode.Range[][] = this.levels.map(() => []);
    keys.forEach((t, k) => {
      const level = spans.visible(t) ? attentionLevel(weights[k], strongest) : 0;
      if (level > 0) ranges[level - 1].push(toRange(spans, t));
    });
    this.levels.forEach((type, i) => editor.setDecorations(type, ranges[i]));
    editor.setDecorations(this.query, [toRange(spans, query)]);
    this.drawnOn = editor;
  }

  private describe(
    choice: AttentionChoice,
    spans: TokenSpans,
    keys: Int32Array,
    weights: Float32Array,
    query: number,
    file: string,
  ): void {
    const name = choiceName(choice);
    const order = Array.from(keys, (t, k) => ({ t, w: weights[k] }))
      .filter((x) => spans.visible(x.t))
      .sort((a, b) => b.w - a.w)
      .slice(0, 5);
    const bos = keys.length > 0 && !spans.visible(keys[0]) ? weights[0] : null;
    const quote = (t: number) => escapeMarkdown(JSON.stringify(spans.tokenText(t)));
    const where = (t: number) => `${escapeMarkdown(file)}:${spans.range(t).start.line + 1}`;
    const lines = [
      `**${name}**: where ${quote(query)} (${where(query)}) attends${choice.head === null ? ' (the mean of the layer’s heads)' : ''}.`,
      '',
      ...order.map((x) => `- ${quote(x.t)} at ${where(x.t)}: ${(100 * x.w).toFixed(1)}%`),
      ...(bos !== null ? ['', `BOS (not in the file) takes ${(100 * bos).toFixed(1)}%.`] : []),
      '',
      'Click to choose another head; **Loupe: Clear Attention** ends it.',
    ];
    const tooltip = new vscode.MarkdownString(lines.join('\n'));
    const top = order[0];
    this.note(
      `$(eye) ${name}${top ? ` → ${ellipsis(spans.tokenText(top.t))} ${(100 * top.w).toFixed(0)}%` : ''}`,
      tooltip,
    );
  }

  private note(text: string, tooltip: string | vscode.MarkdownString): void {
    this.status.text = text;
    this.status.tooltip = tooltip;
    this.status.show();
  }

  private erase(): void {
    const editor = this.drawnOn;
    this.drawnOn = undefined;
    if (!editor) return;
    for (const t of this.levels) editor.setDecorations(t, []);
    editor.setDecorations(this.query, []);
  }

  private build(): void {
    this.erase();
    for (const t of this.levels) t.dispose();
    this.query?.dispose();
    const kind = vscode.window.activeColorTheme.kind;
    const { levels, solid } = attentionColors(kind);
    this.levels = heatDecorationTypes(levels, vscode.OverviewRulerLane.Left, isHighContrast(kind));
    this.query = vscode.window.createTextEditorDecorationType({
      borderColor: solid,
      borderStyle: 'solid',
      borderWidth: '0 0 2px 0',
      rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
    });
  }
}

export function choiceName(choice: AttentionChoice): string {
  return choice.head === null ? `L${choice.layer} all heads` : `L${choice.layer}H${choice.head}`;
}

function ellipsis(text: string): string {
  const shown = JSON.stringify(text.length > 16 ? `${text.slice(0, 15)}…` : text);
  return shown;
}
