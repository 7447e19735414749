/**
 * The status bar item: the loaded model and SAE, a spinner while loading or
 * analysing, a warning colour when something is missing. Clicking it offers
 * to load another model or SAE.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { DocumentAnalyses } from './analyses';
import { EngineState } from './engineState';
import { escapeMarkdown, inlineCode } from './markdownText';

export class LoupeStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem(
    'loupe.status',
    vscode.StatusBarAlignment.Right,
    100,
  );
  private readonly subscriptions: vscode.Disposable[];

  constructor(
    private readonly engine: EngineState,
    private readonly analyses: DocumentAnalyses,
  ) {
    this.item.name = 'Loupe';
    this.item.command = 'loupe.chooseModel';
    this.subscriptions = [
      engine.onDidChange(() => this.update()),
      analyses.onDidChangeState(() => this.update()),
    ];
    this.update();
    this.item.show();
  }

  dispose(): void {
    for (const d of this.subscriptions) d.dispose();
    this.item.dispose();
  }

  private update(): void {
    const s = this.engine.status;
    const a = this.analyses.state;
    const tooltip = new vscode.MarkdownString('', true);
    this.item.backgroundColor = undefined;
    if (s.kind === 'loading') {
      this.item.text = `$(sync~spin) Loupe: ${s.message}`;
      tooltip.appendMarkdown(`Loupe is loading: ${escapeMarkdown(s.message)}`);
    } else if (s.kind === 'failed') {
      this.item.text = '$(error) Loupe: no model';
      this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
      tooltip.appendText(s.message);
    } else {
      const busy = a.kind === 'running' ? '$(sync~spin)' : s.sae ? '$(telescope)' : '$(warning)';
      this.item.text = `${busy} ${s.model.name} · ${s.sae ? s.sae.name : 'no SAE'}`;
      if (!s.sae) this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
      tooltip.appendMarkdown(
        `**Model** ${escapeMarkdown(s.model.name)} (${escapeMarkdown(s.model.modelType)}, ${s.model.nLayers} layers)  \n`,
      );
      tooltip.appendText(s.model.dir);
      tooltip.appendMarkdown('\n\n');
      if (s.sae) {
        tooltip.appendMarkdown(
          `**SAE** ${escapeMarkdown(s.sae.name)} (${s.sae.architecture}, ${s.sae.dSae} features at ${inlineCode(s.sae.hook)})  \n`,
        );
        tooltip.appendText(s.sae.dir);
      } else {
        tooltip.appendText(s.saeProblem ?? 'No SAE');
      }
      if (a.kind === 'done') {
        tooltip.appendMarkdown(
          `\n\n${escapeMarkdown(path.basename(vscode.Uri.parse(a.analysis.uri).path))}: ${a.analysis.spans.count} tokens, analysed in ${a.millis.toFixed(0)} ms`,
        );
      } else if (a.kind === 'skipped' || a.kind === 'failed') {
        tooltip.appendMarkdown('\n\n');
        tooltip.appendText(a.kind === 'skipped' ? a.reason : `Analysis failed: ${a.message}`);
      }
    }
    tooltip.appendMarkdown('\n\n---\n\nClick to load another model or SAE.');
    this.item.tooltip = tooltip;
  }
}
