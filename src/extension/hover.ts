/**
 * Hovering a token shows its strongest features (with labels when there are
 * any, each linking to its heat map) and the model's most likely next token.
 */
import * as vscode from 'vscode';
import { DocumentAnalyses } from './analyses';
import { toRange } from './decorations';
import { EngineError } from './engineClient';
import { EngineState } from './engineState';
import { escapeMarkdown, inlineCode } from './markdownText';

const FEATURES_SHOWN = 3;

export class TokenHover implements vscode.HoverProvider {
  constructor(
    private readonly engine: EngineState,
    private readonly analyses: DocumentAnalyses,
  ) {}

  async provideHover(
    document: vscode.TextDocument,
    position: vscode.Position,
    token: vscode.CancellationToken,
  ): Promise<vscode.Hover | undefined> {
    const analysis = this.analyses.ready(document);
    if (!analysis) return undefined;
    const t = analysis.spans.containing(document.offsetAt(position));
    if (t < 0) return undefined;
    let r;
    try {
      r = await this.engine.client.request(
        'inspect',
        {
          document: analysis.uri,
          version: analysis.version,
          token: t,
          features: FEATURES_SHOWN,
          predictions: 1,
        },
        { token },
      );
    } catch (err) {
      if (err instanceof EngineError && (err.cancelled || err.stale)) return undefined;
      throw err;
    }
    // No theme icons: a token or label holding `$(…)` would otherwise show as one.
    const md = new vscode.MarkdownString();
    md.isTrusted = { enabledCommands: ['loupe.showHeatMap'] };
    md.appendMarkdown(
      `**Loupe** · token ${code(analysis.spans.tokenText(t))} (id ${analysis.spans.ids[t]})\n\n`,
    );
    if (analysis.hasFeatures) {
      if (r.features.length === 0) md.appendMarkdown('No feature fires here.\n\n');
      for (const f of r.features) {
        const link = `command:loupe.showHeatMap?${encodeURIComponent(JSON.stringify([f.index]))}`;
        const label = f.label ? ` ${escapeMarkdown(f.label)}` : '';
        md.appendMarkdown(
          `- [#${f.index}](${link} "Show the heat map of feature #${f.index}")${label} — ${f.act.toFixed(2)}\n`,
        );
      }
      if (r.activeFeatures > r.features.length) {
        md.appendMarkdown(
          `\n${r.activeFeatures - r.features.length} more features active; see the Token Inspector.\n`,
        );
      }
      md.appendMarkdown('\n');
    }
    const next = r.predictions[0];
    if (next) md.appendMarkdown(`Next token: ${code(next.text)} (${(next.prob * 100).toFixed(1)}%)`);
    return new vscode.Hover(md, toRange(analysis.spans, t));
  }
}

/** A token as inline code, its white space shown. */
function code(text: string): string {
  return inlineCode(
    text
      .replace(/ /g, '·')
      .replace(/\t/g, '→')
      .replace(/\r\n|\n|\r/g, '↵'),
  );
}
