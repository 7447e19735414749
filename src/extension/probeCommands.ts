/**
 * The probe commands:
 *
 *   loupe.trainProbe       Train Probe…: labels from a regex over the workspace's tokens, a JSONL
 *                          dataset, or the editor's semantic tokens; hooks; trained in the jobs
 *                          engine (progress, Cancel); results in the Probe Results panel
 *   loupe.openProbeResults Open Probe Results…: a saved probe folder
 *   loupe.applyProbe       Apply Probe to File: the probe's score on each token, as a heat map
 *
 * A trained probe is kept in Loupe's storage until the panel's "Save probe…"
 * copies it where the user says; the panel always names the folder it reads.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ProbeLabelSource, ProbeSummary } from '../shared/causalSchemas';
import { ResultAction, ResultView } from '../webview/causalProtocol';
import { ScoreHeatMap } from './causalHeatMap';
import { ResultsPanel } from './causalPanel';
import { readConfig } from './config';
import { EngineState } from './engineState';
import { JobsEngine, runJob } from './jobs';
import { LabelledDocument, decodeSemanticTokens, splitAtBlankLines } from './semanticTokens';

export interface ProbeContext {
  readonly engine: EngineState;
  readonly jobs: JobsEngine;
  readonly panel: ResultsPanel;
  readonly scores: ScoreHeatMap;
  readonly storage: vscode.Uri;
  readonly lastEditor: () => vscode.TextEditor | undefined;
  readonly steerWithProbe: (dir: string) => Promise<void>;
}

/** Labelled tokens read at most, so that a large workspace trains in seconds, not minutes. */
const MAX_EXAMPLES = 20_000;
/** Files of the active language read for semantic-token labels. */
const MAX_SEMANTIC_FILES = 40;
/** How long a language's extension that is still starting is waited for to offer semantic tokens… */
const LEGEND_WAIT_MS = 15_000;
/** …and its server, once it does, for the active file's tokens (a TypeScript server can take a while). */
const TOKENS_WAIT_MS = 45_000;
/** Parts a lone file of the language is cut into, so a probe has documents to hold out. */
const SINGLE_FILE_PARTS = 4;

export function registerProbeCommands(ctx: ProbeContext): vscode.Disposable[] {
  ctx.panel.onAction = (action, view) => void probeAction(ctx, action, view);
  return [
    vscode.commands.registerCommand('loupe.trainProbe', () => trainProbe(ctx)),
    vscode.commands.registerCommand('loupe.openProbeResults', () => openProbe(ctx)),
    vscode.commands.registerCommand('loupe.applyProbe', () => applyProbe(ctx)),
    vscode.commands.registerCommand('loupe.clearScoreHeatMap', () => ctx.scores.clear()),
  ];
}

/** The loaded model, or null after saying why there is none. */
export function readyModel(engine: EngineState): { dir: string; name: string } | null {
  const s = engine.status;
  if (s.kind === 'ready') return s.model;
  void vscode.window.showWarningMessage(
    s.kind === 'failed' ? `Loupe: no model is loaded (${s.message})` : 'Loupe: the model is still loading.',
  );
  return null;
}

async function trainProbe(ctx: ProbeContext): Promise<void> {
  const model = readyModel(ctx.engine);
  if (!model) return;
  const title = (n: number) => `Loupe: Train Probe (${n}/2)`;
  type SourceItem = vscode.QuickPickItem & { source: 'regex' | 'jsonl' | 'semantic' };
  const source = await vscode.window.showQuickPick<SourceItem>(
    [
      {
        label: 'Regex over tokens',
        description: 'of the workspace files',
        detail: 'Tokens whose text matches are "match", the rest "other"',
        source: 'regex',
      },
      {
        label: 'JSONL dataset…',
        description: '{"text", "label"} or {"text", "spans"} per line',
        detail: 'A label per text (read at its last token) or token-level spans',
        source: 'jsonl',
      },
      {
        label: 'Semantic tokens',
        description: "the language server's token types",
        detail: "Keyword, string, comment, type… in the workspace's files of the active file's language",
        source: 'semantic',
      },
    ],
    { title: title(1), placeHolder: 'Where the labels come from' },
  );
  if (!source) return;
  const labels: ProbeLabelSource | null =
    source.source === 'regex'
      ? await regexLabels(title(1))
      : source.source === 'jsonl'
        ? await jsonlLabels()
        : await semanticLabels(ctx, title(1));
  if (!labels) return;
  const hooks = await pickHooks(ctx, title(2));
  if (!hooks) return;
  const outDir = path.join(ctx.storage.fsPath, 'probes', `probe-${Date.now()}`);
  const outcome = await runJob(
    ctx.jobs,
    `Train Probe on ${model.name}`,
    'trainProbe',
    {
      model: model.dir,
      threads: readConfig().threads,
      cacheDir: null,
      labels,
      hooks,
      outDir,
      maxExamples: MAX_EXAMPLES,
      seed: null,
    },
    outDir,
  );
  if (outcome.kind === 'failed') void vscode.window.showErrorMessage(`Loupe: ${outcome.message}`);
  if (outcome.kind !== 'done') return;
  await ctx.panel.show({ kind: 'probe', probe: outcome.result, saved: null });
}

async function regexLabels(title: string): Promise<ProbeLabelSource | null> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) {
    void vscode.window.showWarningMessage('Loupe: open a folder first; the regex reads its files.');
    return null;
  }
  const pattern = await vscode.window.showInputBox({
    title,
    prompt: `A regular expression tested on each token's text in ${folder.name}`,
    placeHolder: '^\\s*(def|class|return|import)$',
    validateInput: (v) => {
      if (v.length === 0) return 'Give a pattern';
      try {
        new RegExp(v, 'u');
        return null;
      } catch (err) {
        return (err as Error).message;
      }
    },
  });
  return pattern ? { kind: 'regex', pattern, corpus: folder.uri.fsPath } : null;
}

async function jsonlLabels(): Promise<ProbeLabelSource | null> {
  const picked = await vscode.window.showOpenDialog({
    title: 'Loupe: a labelled dataset',
    filters: { 'JSON Lines': ['jsonl'] },
    canSelectMany: false,
    openLabel: 'Train on this',
  });
  return picked?.[0] ? { kind: 'jsonl', file: picked[0].fsPath } : null;
}

/**
 * Spans of the chosen semantic token types in the workspace's files of the
 * active file's language, each labelled with its type's name (the rest are
 * "other"). The tokens are read first, so the types offered are those the
 * files have, with their counts.
 */
async function semanticLabels(ctx: ProbeContext, title: string): Promise<ProbeLabelSource | null> {
  const editor = ctx.lastEditor();
  if (!editor) {
    void vscode.window.showWarningMessage('Loupe: open a file of the language to probe first.');
    return null;
  }
  const active = editor.document;
  const language = active.languageId;
  const read = await vscode.window.withProgress(
    {
      location: vscode.ProgressLocation.Notification,
      title: `Loupe: reading the semantic tokens of the ${language} files`,
      cancellable: true,
    },
    (_progress, token) => readSemanticTokens(active, token),
  );
  if (!read) return null;
  if (read.kind === 'noProvider') {
    void vscode.window.showWarningMessage(
      `Loupe: no extension provided semantic tokens for ${language} within ${LEGEND_WAIT_MS / 1000} s. ` +
        "If the language's extension is still starting, try again in a moment; else install or enable one, or label with a regex or a JSONL dataset.",
    );
    return null;
  }
  const { documents } = read;
  const counts = new Map<string, { tokens: number; files: number }>();
  for (const doc of documents) {
    const seen = new Set<string>();
    for (const s of doc.spans) {
      const c = counts.get(s.label) ?? { tokens: 0, files: 0 };
      c.tokens++;
      if (!seen.has(s.label)) c.files++;
      seen.add(s.label);
      counts.set(s.label, c);
    }
  }
  if (counts.size === 0) {
    void vscode.window.showWarningMessage(
      documents.length === 0
        ? `Loupe: the ${language} language server gave no semantic tokens; if it is still starting, try again in a moment.`
        : `Loupe: the ${language} files have no semantic tokens to label.`,
    );
    return null;
  }
  const byCount = [...counts].sort((a, b) => b[1].tokens - a[1].tokens);
  const fileCount = (n: number) => `${n} file${n === 1 ? '' : 's'}`;
  const types = await vscode.window.showQuickPick(
    byCount.map(([type, c], i) => ({
      label: type,
      description: `${c.tokens} token${c.tokens === 1 ? '' : 's'} in ${fileCount(c.files)}`,
      picked: counts.has('keyword') ? type === 'keyword' : i === 0,
    })),
    {
      title,
      placeHolder: `Semantic token types to probe for, each its own label (the other tokens are "other"); ${read.files} ${language} file${read.files === 1 ? '' : 's'} read`,
      canPickMany: true,
    },
  );
  if (!types || types.length === 0) return null;
  const chosen = new Set(types.map((t) => t.label));
  const labelled = documents.map((d) => ({ ...d, spans: d.spans.filter((s) => chosen.has(s.label)) }));
  // Probes are split by document; a lone file is cut into parts so there is text to hold out.
  const split = labelled.length === 1 ? splitAtBlankLines(labelled[0], SINGLE_FILE_PARTS) : labelled;
  return {
    kind: 'spans',
    description: `semantic tokens ${[...chosen].sort().join(', ')} in ${fileCount(documents.length)} of ${language}`,
    documents: split.map((d) => ({ source: d.source, text: d.text, spans: [...d.spans] })),
  };
}

type SemanticRead = { kind: 'noProvider' } | { kind: 'read'; files: number; documents: LabelledDocument[] };

/**
 * The semantic tokens of the workspace's files of `active`'s language (and of
 * `active` itself, saved or not), by type. A language server that is still
 * starting has no legend yet, or gives no tokens: both are waited for, a while.
 */
async function readSemanticTokens(
  active: vscode.TextDocument,
  cancel: vscode.CancellationToken,
): Promise<SemanticRead | null> {
  let deadline = Date.now() + LEGEND_WAIT_MS;
  const pause = () => new Promise((r) => setTimeout(r, 500));
  let legend: vscode.SemanticTokensLegend | undefined;
  for (;;) {
    legend = await vscode.commands.executeCommand<vscode.SemanticTokensLegend | undefined>(
      'vscode.provideDocumentSemanticTokensLegend',
      active.uri,
    );
    if (cancel.isCancellationRequested) return null;
    if (legend && legend.tokenTypes.length > 0) break;
    if (Date.now() > deadline) return { kind: 'noProvider' };
    await pause();
  }
  deadline = Date.now() + TOKENS_WAIT_MS;
  const ext = path.extname(active.fileName);
  const found = ext
    ? await vscode.workspace.findFiles(`**/*${ext}`, '**/node_modules/**', MAX_SEMANTIC_FILES)
    : [];
  const uris = [active.uri, ...found.filter((u) => u.toString() !== active.uri.toString())].slice(
    0,
    MAX_SEMANTIC_FILES,
  );
  const tokensOf = async (uri: vscode.Uri): Promise<vscode.SemanticTokens | undefined> => {
    try {
      return await vscode.commands.executeCommand<vscode.SemanticTokens | undefined>(
        'vscode.provideDocumentSemanticTokens',
        uri,
      );
    } catch {
      return undefined; // a provider that fails on one file leaves the others
    }
  };
  // The active file's tokens show when the server is up: wait for them, then read the rest.
  let first = await tokensOf(active.uri);
  while (!first && Date.now() < deadline && !cancel.isCancellationRequested) {
    await pause();
    first = await tokensOf(active.uri);
  }
  const documents: LabelledDocument[] = [];
  let files = 0;
  for (const uri of uris) {
    if (cancel.isCancellationRequested) return null;
    const doc = uri === active.uri ? active : await vscode.workspace.openTextDocument(uri);
    if (doc.languageId !== active.languageId) continue;
    const tokens = uri === active.uri ? first : await tokensOf(uri);
    files++;
    if (!tokens) continue;
    const text = doc.getText();
    const spans = decodeSemanticTokens(text, tokens.data, legend.tokenTypes);
    documents.push({ source: vscode.workspace.asRelativePath(uri), text, spans });
  }
  return { kind: 'read', files, documents };
}

/** Hooks to probe: the per-token ones, the residual stream picked. */
async function pickHooks(ctx: ProbeContext, title: string): Promise<string[] | null> {
  const { hooks } = await ctx.engine.client.request('hooks', {});
  const items = hooks
    .filter((h) => h.shape[0] === 'batch' && h.shape[1] === 'pos' && h.shape.length === 3)
    .map((h) => ({
      label: h.name,
      description: `[${h.shape.join(', ')}]`,
      picked: /^blocks\.0\.hook_resid_pre$|hook_resid_(mid|post)$/.test(h.name),
    }));
  const picked = await vscode.window.showQuickPick(items, {
    title,
    placeHolder: 'Hooks to train a probe at (the residual stream is picked)',
    canPickMany: true,
  });
  return picked && picked.length > 0 ? picked.map((p) => p.label) : null;
}

async function openProbe(ctx: ProbeContext): Promise<void> {
  const picked = await vscode.window.showOpenDialog({
    title: 'Loupe: a saved probe folder (probe.json + probe.safetensors)',
    canSelectFiles: false,
    canSelectFolders: true,
    openLabel: 'Open Probe',
  });
  if (!picked?.[0]) return;
  try {
    const probe = await ctx.engine.client.request('probeInfo', { dir: picked[0].fsPath });
    await ctx.panel.show({ kind: 'probe', probe, saved: probe.dir });
  } catch (err) {
    void vscode.window.showErrorMessage(`Loupe: ${(err as Error).message}`);
  }
}

/** The probe the panel shows, or one the user opens. */
async function currentProbe(ctx: ProbeContext): Promise<ProbeSummary | null> {
  const view = ctx.panel.view;
  if (view?.kind === 'probe' && fs.existsSync(view.probe.dir)) return view.probe;
  await openProbe(ctx);
  const opened = ctx.panel.view;
  return opened?.kind === 'probe' ? opened.probe : null;
}

async function applyProbe(ctx: ProbeContext, given?: ProbeSummary): Promise<void> {
  if (!readyModel(ctx.engine)) return;
  const probe = given ?? (await currentProbe(ctx));
  if (!probe) return;
  const editor = ctx.lastEditor();
  if (!editor) {
    void vscode.window.showWarningMessage('Loupe: open a file to apply the probe to.');
    return;
  }
  const document = editor.document;
  const version = document.version;
  try {
    const r = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: 'Loupe: applying the probe',
        cancellable: true,
      },
      (_progress, token) =>
        ctx.engine.client.request(
          'applyProbe',
          { dir: probe.dir, text: document.getText(), hook: null, label: null },
          { token },
        ),
    );
    const hook = probe.hooks.find((h) => h.hook === r.hook);
    await vscode.window.showTextDocument(document, editor.viewColumn);
    ctx.scores.show({
      document,
      version,
      starts: r.starts,
      ends: r.ends,
      values: r.scores,
      kind: 'probability',
      title: `P(${r.scored}) at ${r.hook}`,
      details: [
        `Probe ${path.basename(probe.dir)} on ${probe.dataset}`,
        hook ? `held-out accuracy ${(100 * hook.accuracy).toFixed(1)}%` : '',
      ],
    });
  } catch (err) {
    if (!/cancelled/.test((err as Error).message))
      void vscode.window.showErrorMessage(`Loupe: ${(err as Error).message}`);
  }
}

async function probeAction(ctx: ProbeContext, action: ResultAction, view: ResultView): Promise<void> {
  if (view.kind !== 'probe') return;
  const probe = view.probe;
  try {
    switch (action) {
      case 'saveProbe': {
        const base = vscode.workspace.workspaceFolders?.[0]?.uri;
        const target = await vscode.window.showSaveDialog({
          title: 'Loupe: save the probe as a folder',
          defaultUri: base ? vscode.Uri.joinPath(base, 'probes', path.basename(probe.dir)) : undefined,
          saveLabel: 'Save Probe',
        });
        if (!target) return;
        await ctx.engine.client.request('copyResult', {
          from: probe.dir,
          to: target.fsPath,
          kind: 'probe',
          leaveOut: [],
        });
        const saved = await ctx.engine.client.request('probeInfo', { dir: target.fsPath });
        await ctx.panel.show({ kind: 'probe', probe: saved, saved: saved.dir });
        void vscode.window.showInformationMessage(`Loupe: saved the probe in ${saved.dir}`);
        return;
      }
      case 'exportDirection': {
        const target = await vscode.window.showSaveDialog({
          title: "Loupe: export the probe's direction (at its most accurate hook)",
          filters: { Safetensors: ['safetensors'] },
          defaultUri: vscode.workspace.workspaceFolders?.[0]
            ? vscode.Uri.joinPath(vscode.workspace.workspaceFolders[0].uri, 'probe-direction.safetensors')
            : undefined,
        });
        if (!target) return;
        const r = await ctx.engine.client.request('exportProbeDirection', {
          dir: probe.dir,
          hook: null,
          label: null,
          out: target.fsPath,
        });
        void vscode.window.showInformationMessage(
          `Loupe: wrote the direction of '${r.label}' at ${r.hook} (${r.width} values) to ${r.out}`,
        );
        return;
      }
      case 'applyProbe':
        return applyProbe(ctx, probe);
      case 'openProbe':
        return openProbe(ctx);
      case 'steerWithProbe':
        return ctx.steerWithProbe(probe.dir);
    }
  } catch (err) {
    void vscode.window.showErrorMessage(`Loupe: ${(err as Error).message}`);
  }
}
