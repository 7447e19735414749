/**
 * The causal commands, on the open file and the caret:
 *
 *   loupe.patchActivations   Patch Activations…: clean = the selection (or file), read first so that
 *                            one too long is refused at once; corrupted = another editor's selection,
 *                            text typed or a file; tokens A and B; heat maps in a panel
 *   loupe.occlusion          Occlusion Attribution: each earlier token's effect on the prediction
 *                            after the caret's token, as a signed heat map in the editor
 *   loupe.steer              Steer Generation…: an SAE feature or a saved probe's direction, hook,
 *                            strength; unsteered beside steered, greedy and sampled
 *   loupe.ablate             Ablate…: heads, MLPs, neurons or SAE features, zero or mean; Δloss and
 *                            the prediction at the caret, in the output channel
 *   loupe.tcav               TCAV…: concept examples (a file or the selection) against random
 *                            pieces of the workspace; scores per hook with their t-test
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EngineMethod, EngineParams, EngineResult } from '../engine/host/protocol';
import { PatchView, ResultView } from '../webview/causalProtocol';
import { ScoreHeatMap } from './causalHeatMap';
import { ResultsPanel } from './causalPanel';
import { readConfig } from './config';
import { EngineError } from './engineClient';
import { EngineState } from './engineState';
import { JobsEngine, runJob } from './jobs';
import { readyModel } from './probeCommands';

export interface CausalContext {
  readonly engine: EngineState;
  readonly jobs: JobsEngine;
  readonly panels: { patch: ResultsPanel; steer: ResultsPanel; tcav: ResultsPanel };
  readonly scores: ScoreHeatMap;
  readonly log: vscode.LogOutputChannel;
  readonly lastEditor: () => vscode.TextEditor | undefined;
}

export function registerCausalCommands(ctx: CausalContext): {
  disposables: vscode.Disposable[];
  steerWithProbe: (dir: string) => Promise<void>;
} {
  let lastSteer: EngineParams<'steer'> | null = null;
  const runSteer = async (params: EngineParams<'steer'>) => {
    lastSteer = params;
    const result = await withEngine(ctx, 'Steering', 'steer', params, { panel: ctx.panels.steer });
    if (result) await ctx.panels.steer.show({ kind: 'steer', result });
  };
  const steerWith = async (direction: EngineParams<'steer'>['direction'] | null) => {
    const params = await steerParams(ctx, direction);
    if (params) await runSteer(params);
  };
  ctx.panels.steer.onAction = (action) => {
    if (action === 'resample' && lastSteer) void runSteer({ ...lastSteer, seed: lastSteer.seed + 1 });
    else if (action === 'resample' || action === 'rerun') void steerWith(null);
  };
  ctx.panels.tcav.onAction = () => void tcav(ctx);
  ctx.panels.patch.onAction = () => void patch(ctx);
  return {
    disposables: [
      vscode.commands.registerCommand('loupe.patchActivations', () => patch(ctx)),
      vscode.commands.registerCommand('loupe.occlusion', () => occlusion(ctx)),
      vscode.commands.registerCommand('loupe.steer', () => steerWith(null)),
      vscode.commands.registerCommand('loupe.ablate', () => ablate(ctx)),
      vscode.commands.registerCommand('loupe.tcav', () => tcav(ctx)),
    ],
    steerWithProbe: (dir) => steerWith({ kind: 'probe', dir, label: null }),
  };
}

/**
 * A quick engine request under a cancellable notification; errors are shown
 * (with `hint` in brackets after them, when given), null returned. `panel`
 * shows itself busy meanwhile.
 */
async function withEngine<M extends EngineMethod>(
  ctx: CausalContext,
  title: string,
  method: M,
  params: EngineParams<M>,
  { panel, hint }: { panel?: ResultsPanel; hint?: string } = {},
): Promise<EngineResult<M> | null> {
  panel?.busy(`${title}…`);
  try {
    return await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Loupe: ${title}`, cancellable: true },
      (progress, token) => {
        let shown = 0;
        return ctx.engine.client.request(method, params, {
          token,
          onProgress: (message, fraction) => {
            const increment = fraction === null ? 0 : Math.max(0, 100 * fraction - shown);
            shown += increment;
            progress.report({ message, increment });
          },
        });
      },
    );
  } catch (err) {
    if (!(err instanceof EngineError && err.cancelled)) {
      const message = `${(err as Error).message}${hint ? ` (${hint})` : ''}`;
      ctx.log.error(`${title}: ${message}`);
      void vscode.window.showErrorMessage(`Loupe: ${message}`);
    }
    return null;
  } finally {
    panel?.busy(null);
  }
}

function editorOrWarn(ctx: CausalContext): vscode.TextEditor | null {
  const editor = ctx.lastEditor();
  if (!editor) void vscode.window.showWarningMessage('Loupe: open a file first.');
  return editor ?? null;
}

/** The selection's text, or the whole file's when nothing is selected. */
function selectedText(editor: vscode.TextEditor): string {
  return editor.selection.isEmpty ? editor.document.getText() : editor.document.getText(editor.selection);
}

/**
 * A text for one line of UI (the status bar, a placeholder): line breaks and
 * tabs visible, and spaces too for a lone token, at most `max` characters.
 */
function shown(text: string, max = 40, token = false): string {
  const visible = text
    .replace(/ /g, token ? '·' : ' ')
    .replace(/\t/g, '→')
    .replace(/\r\n|\n|\r/g, '↵');
  return visible.length > max ? `${visible.slice(0, max - 1)}…` : visible;
}

/** A token as the engine reads it: #id, which needs no tokenizing again, or the text typed (id -1). */
function tokenSpec(t: { id: number; text: string }): string {
  return t.id >= 0 ? `#${t.id}` : t.text;
}

// ---- Patch Activations… ----

async function patch(ctx: CausalContext): Promise<void> {
  if (!readyModel(ctx.engine)) return;
  const editor = editorOrWarn(ctx);
  if (!editor) return;
  const cleanText = selectedText(editor);
  const title = (n: number) => `Loupe: Patch Activations (${n}/3)`;
  // The clean text alone first: one too long for the model is refused before the user types the
  // corrupted one, and its token count tells how long that must be.
  const read = await withEngine(
    ctx,
    'Reading the clean text',
    'patchPreview',
    { clean: cleanText, corrupted: cleanText },
    {
      hint: editor.selection.isEmpty
        ? 'nothing was selected, so the clean text is the whole file: select the clean prompt first'
        : undefined,
    },
  );
  if (!read) return;
  const tokens = read.clean.length;
  type CorruptItem = vscode.QuickPickItem & { text: () => Promise<string | null> };
  const others: CorruptItem[] = vscode.window.visibleTextEditors
    .filter((e) => e !== editor && !e.selection.isEmpty)
    .map((e) => ({
      label: `Selection in ${path.basename(e.document.fileName)}`,
      description: JSON.stringify(e.document.getText(e.selection).slice(0, 60)),
      text: () => Promise.resolve(e.document.getText(e.selection)),
    }));
  const items: CorruptItem[] = [
    ...others,
    ...editor.selections.slice(1).map((s, i) => ({
      label: `Second selection ${i + 1} in this editor`,
      description: JSON.stringify(editor.document.getText(s).slice(0, 60)),
      text: () => Promise.resolve(editor.document.getText(s)),
    })),
    {
      label: 'Type the corrupted text…',
      text: async () =>
        (await vscode.window.showInputBox({
          title: title(1),
          prompt: `The corrupted text: ${tokens} tokens, as many as the clean one`,
          value: cleanText,
        })) ?? null,
    },
    {
      label: 'A file…',
      text: async () => {
        const f = await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: 'Corrupted text' });
        return f?.[0] ? (await vscode.workspace.openTextDocument(f[0])).getText() : null;
      },
    },
  ];
  const source = await vscode.window.showQuickPick(items, {
    title: title(1),
    placeHolder: `Corrupted text for the clean “${shown(cleanText, 50)}” (${tokens} tokens)`,
  });
  if (!source) return;
  const corrupted = await source.text();
  if (corrupted === null) return;
  const preview = await withEngine(ctx, 'Reading the texts', 'patchPreview', { clean: cleanText, corrupted });
  if (!preview) return;
  if (preview.clean.length !== preview.corrupted.length) {
    void vscode.window.showErrorMessage(
      `Loupe: the clean text is ${preview.clean.length} tokens and the corrupted text ${preview.corrupted.length}; activation patching needs the same number of tokens.`,
    );
    return;
  }
  const target = await pickToken(title(2), 'Token A: the clean prediction', preview.cleanTop);
  if (!target) return;
  const versusDefault = preview.corruptedTop.find((t) => t.id !== target.id) ?? preview.cleanTop[1];
  const versus = await pickToken(title(3), 'Token B: the alternative (logit difference A − B)', [
    versusDefault,
    ...preview.cleanTop.filter((t) => t.id !== target.id && t.id !== versusDefault.id),
  ]);
  if (!versus) return;
  const r = await withEngine(
    ctx,
    'Patching activations',
    'patch',
    { clean: cleanText, corrupted, target: tokenSpec(target), versus: tokenSpec(versus), site: 'resid_pre' },
    { panel: ctx.panels.patch },
  );
  if (!r) return;
  const grid = (g: EngineResult<'patch'>['residual']) => ({
    rowLabels: g.rowLabels,
    columnLabels: g.columnLabels,
    values: [...g.values],
    logitDiffs: [...g.logitDiffs],
  });
  const view: PatchView = { ...r, residual: grid(r.residual), heads: grid(r.heads) };
  await ctx.panels.patch.show({ kind: 'patch', result: view, clean: cleanText, corrupted });
}

/** A token from a list (the first one active), or another typed as text or #id. */
async function pickToken(
  title: string,
  placeHolder: string,
  tokens: readonly { id: number; text: string }[],
): Promise<{ id: number; text: string } | null> {
  type Item = vscode.QuickPickItem & { token: { id: number; text: string } | null };
  const items: Item[] = [
    ...tokens.map((t) => ({ label: JSON.stringify(t.text), description: `#${t.id}`, token: t })),
    { label: 'Another token…', token: null },
  ];
  const picked = await vscode.window.showQuickPick(items, { title, placeHolder });
  if (!picked) return null;
  if (picked.token) return picked.token;
  const typed = await vscode.window.showInputBox({
    title,
    prompt: 'One token: its text (mind a leading space) or #id',
  });
  if (!typed) return null;
  const id = /^#(\d+)$/.exec(typed);
  return id ? { id: Number(id[1]), text: typed } : { id: -1, text: typed };
}

// ---- Occlusion Attribution ----

async function occlusion(ctx: CausalContext): Promise<void> {
  if (!readyModel(ctx.engine)) return;
  const editor = editorOrWarn(ctx);
  if (!editor) return;
  const document = editor.document;
  const version = document.version;
  const offset = document.offsetAt(editor.selection.active);
  const r = await withEngine(ctx, 'Occlusion attribution', 'occlusion', {
    text: document.getText(),
    offset,
    target: null,
    versus: null,
  });
  if (!r) return;
  const at = r.ends[r.position];
  const before = document.getText().slice(Math.max(0, at - 16), at);
  const metric = r.metric === 'logit-diff' ? 'logit difference' : r.metric;
  ctx.scores.show({
    document,
    version,
    starts: r.starts,
    ends: r.ends,
    values: r.effects,
    kind: 'signed',
    // White space shown (↵, ·), not escaped: the prediction is often a newline or an indent.
    title: `Occlusion: prediction "${shown(r.target.text, 12, true)}" after …${shown(before.trimStart(), 16)}`,
    details: [
      `Each token's effect on the ${metric} of ${JSON.stringify(r.target.text)} (${r.clean.toFixed(3)}) when its embedding is zeroed: warm where the token supports the prediction, blue where it works against it.`,
    ],
  });
  ctx.log.info(
    `occlusion: ${metric} of ${JSON.stringify(r.target.text)} at offset ${at}: ${r.clean.toFixed(4)}; largest effects ` +
      [...r.effects]
        .map((e, i) => ({ e, i }))
        .sort((a, b) => Math.abs(b.e) - Math.abs(a.e))
        .slice(0, 5)
        .map(
          ({ e, i }) => `${JSON.stringify(document.getText().slice(r.starts[i], r.ends[i]))} ${e.toFixed(3)}`,
        )
        .join(', '),
  );
}

// ---- Steer Generation… ----

async function steerParams(
  ctx: CausalContext,
  given: EngineParams<'steer'>['direction'] | null,
): Promise<EngineParams<'steer'> | null> {
  const status = ctx.engine.status;
  if (!readyModel(ctx.engine) || status.kind !== 'ready') return null;
  const editor = editorOrWarn(ctx);
  if (!editor) return null;
  const title = 'Loupe: Steer Generation';
  let direction = given;
  if (!direction) {
    type Item = vscode.QuickPickItem & { source: 'feature' | 'probe' };
    const items: Item[] = [
      ...(status.sae
        ? [
            {
              label: 'SAE feature…',
              description: `of ${status.sae.name}, at ${status.sae.hook}`,
              source: 'feature' as const,
            },
          ]
        : []),
      { label: 'Saved probe…', description: 'its direction, at unit length', source: 'probe' },
    ];
    const what = await vscode.window.showQuickPick(items, { title, placeHolder: 'The direction to add' });
    if (!what) return null;
    if (what.source === 'feature') {
      const index = await vscode.window.showInputBox({
        title,
        prompt: `SAE feature index (0–${(status.sae?.dSae ?? 1) - 1})`,
        validateInput: (v) => (/^\d+$/.test(v.trim()) ? null : 'A feature index'),
      });
      if (index === undefined) return null;
      direction = { kind: 'feature', index: Number(index.trim()) };
    } else {
      const dir = await vscode.window.showOpenDialog({
        canSelectFiles: false,
        canSelectFolders: true,
        openLabel: 'Steer with this probe',
      });
      if (!dir?.[0]) return null;
      direction = { kind: 'probe', dir: dir[0].fsPath, label: null };
    }
  }
  const strength = await vscode.window.showInputBox({
    title,
    prompt:
      direction.kind === 'feature'
        ? 'Strength, in units of the feature activation (negative steers away)'
        : 'Strength, in units of activation norm along the probe direction (negative steers away)',
    value: direction.kind === 'feature' ? '8' : '20',
    validateInput: (v) => (Number.isFinite(Number(v)) && v.trim() !== '' ? null : 'A number'),
  });
  if (strength === undefined) return null;
  const tokens = await vscode.window.showInputBox({
    title,
    prompt: 'Tokens to generate',
    value: '20',
    validateInput: (v) => (/^\d+$/.test(v) && Number(v) > 0 && Number(v) <= 200 ? null : '1 to 200'),
  });
  if (tokens === undefined) return null;
  const prompt = editor.selection.isEmpty
    ? editor.document.getText(new vscode.Range(new vscode.Position(0, 0), editor.selection.active))
    : editor.document.getText(editor.selection);
  return {
    prompt: prompt.slice(-2000),
    direction,
    hook: null,
    strength: Number(strength),
    tokens: Number(tokens),
    seed: 0,
    temperature: 1,
  };
}

// ---- Ablate… ----

async function ablate(ctx: CausalContext): Promise<void> {
  const status = ctx.engine.status;
  if (!readyModel(ctx.engine) || status.kind !== 'ready') return;
  const editor = editorOrWarn(ctx);
  if (!editor) return;
  const title = 'Loupe: Ablate';
  type Item = vscode.QuickPickItem & { what: 'components' | 'features'; spec: string | null };
  const items: Item[] = [
    { label: 'Every head, one at a time', description: 'heads', what: 'components', spec: 'heads' },
    { label: 'Every MLP, one at a time', description: 'mlps', what: 'components', spec: 'mlps' },
    { label: 'Every attention layer, one at a time', description: 'attn', what: 'components', spec: 'attn' },
    {
      label: 'Components…',
      description: 'L0H1, L1.mlp, L1.attn, L1N42 together',
      what: 'components',
      spec: null,
    },
    ...(status.sae
      ? [
          {
            label: 'SAE features…',
            description: `of ${status.sae.name}`,
            what: 'features' as const,
            spec: null,
          },
        ]
      : []),
  ];
  const what = await vscode.window.showQuickPick(items, { title, placeHolder: 'What to ablate' });
  if (!what) return;
  let spec = what.spec;
  if (spec === null) {
    spec =
      (await vscode.window.showInputBox({
        title,
        prompt:
          what.what === 'features'
            ? 'Feature indices, comma-separated (ablated together)'
            : 'Components, comma-separated (ablated together): L0H1, L1.mlp, L1.attn, L1N42',
      })) ?? null;
    if (!spec) return;
  }
  const mode = await vscode.window.showQuickPick(
    [
      { label: 'Zero', description: 'set the output to 0', mode: 'zero' as const },
      { label: 'Mean', description: "its mean over the workspace's open files", mode: 'mean' as const },
    ],
    { title, placeHolder: 'Ablation' },
  );
  if (!mode) return;
  let indices: number[] = [];
  if (what.what === 'features') {
    indices = spec.split(',').map((s) => Number(s.trim()));
    if (indices.some((n) => !Number.isInteger(n) || n < 0)) {
      void vscode.window.showErrorMessage(`Loupe: '${spec}' is not a list of feature indices`);
      return;
    }
  }
  const document = editor.document;
  const meanTexts =
    mode.mode === 'mean'
      ? vscode.workspace.textDocuments.filter((d) => d.uri.scheme === 'file').map((d) => d.getText())
      : [];
  const r = await withEngine(ctx, 'Ablating', 'ablate', {
    text: document.getText(),
    offset: document.offsetAt(editor.selection.active),
    what: what.what === 'features' ? { kind: 'features', indices } : { kind: 'components', spec },
    mode: mode.mode,
    meanTexts,
  });
  if (!r) return;
  const pct = (p: number) => `${(100 * p).toFixed(1)}%`;
  const signed = (v: number, digits: number) => `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`;
  const lines = [
    `${r.mode} ablation on ${path.basename(document.fileName)} (${r.tokens} tokens); prediction after …${JSON.stringify(r.context)}: ${JSON.stringify(r.target.text)} p ${pct(r.clean.prob)}, loss ${r.clean.loss.toFixed(4)}`,
    ...[...r.effects]
      .sort((a, b) => Math.abs(b.deltaLoss) - Math.abs(a.deltaLoss))
      .map(
        (e) =>
          `  ${e.name.padEnd(14)} Δloss ${signed(e.deltaLoss, 4)}  Δlogit ${signed(e.deltaLogit, 3)}  p ${pct(r.clean.prob)} → ${pct(e.prob)}  now: ${e.top
            .slice(0, 3)
            .map((t) => `${JSON.stringify(t.text)} ${pct(t.prob)}`)
            .join(', ')}`,
      ),
  ];
  for (const line of lines) ctx.log.info(line);
  const top = [...r.effects].sort((a, b) => Math.abs(b.deltaLoss) - Math.abs(a.deltaLoss))[0];
  const choice = await vscode.window.showInformationMessage(
    `Loupe: ${r.effects.length === 1 ? top.name : `${r.effects.length} ablations; largest ${top.name}`}: Δloss ${signed(top.deltaLoss, 4)}, P("${shown(r.target.text, 12, true)}") ${pct(r.clean.prob)} → ${pct(top.prob)}.`,
    'Show All',
  );
  if (choice) ctx.log.show(true);
}

// ---- TCAV… ----

async function tcav(ctx: CausalContext): Promise<void> {
  const model = readyModel(ctx.engine);
  if (!model) return;
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) {
    void vscode.window.showWarningMessage('Loupe: open a folder first; random examples come from its files.');
    return;
  }
  const editor = ctx.lastEditor();
  const title = 'Loupe: TCAV';
  type Source = vscode.QuickPickItem & { lines: () => Promise<{ name: string; lines: string[] } | null> };
  const sources: Source[] = [
    ...(editor && !editor.selection.isEmpty
      ? [
          {
            label: 'The selection',
            description: 'one example per line',
            lines: () =>
              Promise.resolve({
                name: 'the selection',
                lines: editor.document.getText(editor.selection).split(/\r?\n/),
              }),
          },
        ]
      : []),
    {
      label: 'A file…',
      description: 'one example per line',
      lines: async () => {
        const f = await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: 'Concept examples' });
        if (!f?.[0]) return null;
        return {
          name: path.basename(f[0].fsPath),
          lines: (await vscode.workspace.openTextDocument(f[0])).getText().split(/\r?\n/),
        };
      },
    },
  ];
  const source = await vscode.window.showQuickPick(sources, { title, placeHolder: 'Concept examples' });
  const concept = source && (await source.lines());
  if (!concept) return;
  const target = await vscode.window.showInputBox({
    title,
    prompt:
      "The target token whose logit TCAV explains (its text, mind a leading space, or #id); the inputs are the open file's lines",
  });
  if (!target) return;
  const inputs = (editor?.document.getText() ?? '')
    .split(/\r?\n/)
    .filter((l) => l.trim().length > 0)
    .slice(0, 40);
  const { hooks } = await ctx.engine.client.request('hooks', {});
  const outcome = await runJob(
    ctx.jobs,
    'TCAV',
    'tcav',
    {
      model: model.dir,
      threads: readConfig().threads,
      cacheDir: null,
      concept: concept.lines,
      inputs,
      randomCorpus: folder.uri.fsPath,
      target,
      hooks: hooks.filter((h) => /hook_resid_post$/.test(h.name)).map((h) => h.name),
      runs: 10,
      seed: null,
    },
    `tcav:${concept.name}`,
  );
  if (outcome.kind === 'failed') void vscode.window.showErrorMessage(`Loupe: ${outcome.message}`);
  if (outcome.kind !== 'done') return;
  const view: ResultView = { kind: 'tcav', result: outcome.result, concept: concept.name };
  await ctx.panels.tcav.show(view);
}
