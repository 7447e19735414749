/**
 * Wires the lens and head views into the extension: the Lens Grid and the
 * Heads panel (with the serializers that bring them back after a reload),
 * attention in the editor, and their commands (package.json lists them):
 *
 *   loupe.openLensGrid     the grid of what each layer predicts at the selection's tokens
 *   loupe.loadTunedLens    choose a tuned lens folder (loupe.tunedLensPath) and show it in the grid
 *   loupe.trainTunedLens   train one on a corpus in the jobs engine, with progress and Cancel
 *   loupe.showAttention    choose a layer and a head (or all heads): the cursor's token's attention lights up
 *   loupe.clearAttention   ends it
 *   loupe.openHeads        the heads' direct logit attribution and text directions
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { DocumentAnalyses } from './analyses';
import { AttentionInEditor, choiceName } from './attention';
import { EngineState } from './engineState';
import { HeadsPanel } from './headsPanel';
import { JobsEngine, runJob } from './jobs';
import { LensEditor } from './lensEditor';
import { LensGridPanel } from './lensGrid';
import { expandHome, readConfig, setPath, tunedLensPath } from './config';
import { pickCorpus } from './corpusPicker';

export interface LensContext {
  readonly extensionUri: vscode.Uri;
  readonly engine: EngineState;
  readonly analyses: DocumentAnalyses;
  readonly jobs: JobsEngine;
  readonly log: vscode.LogOutputChannel;
  /** The workspace's state: the lens the grid last showed. */
  readonly state: vscode.Memento;
}

/** How long each view lets the cursor rest before it follows: the grid runs the most. */
const GRID_DEBOUNCE_MS = 250;
const HEADS_DEBOUNCE_MS = 150;
const ATTENTION_DEBOUNCE_MS = 60;

export function registerLensViews(ctx: LensContext): vscode.Disposable[] {
  const follow = (ms: number) => new LensEditor(ctx.analyses, ctx.engine, ms);
  const gridEditor = follow(GRID_DEBOUNCE_MS);
  const headsEditor = follow(HEADS_DEBOUNCE_MS);
  const attentionEditor = follow(ATTENTION_DEBOUNCE_MS);
  const grid = new LensGridPanel(ctx.extensionUri, ctx.engine, gridEditor, ctx.log, ctx.state);
  const attention = new AttentionInEditor(ctx.engine, attentionEditor, ctx.log);
  const heads = new HeadsPanel(ctx.extensionUri, ctx.engine, headsEditor, attention, ctx.log);
  void vscode.commands.executeCommand('setContext', 'loupe.attentionActive', false);
  const commands: Record<string, (...args: unknown[]) => unknown> = {
    'loupe.openLensGrid': () => grid.show(),
    'loupe.loadTunedLens': () => loadTunedLens(grid),
    'loupe.trainTunedLens': () => trainTunedLens(ctx, grid),
    'loupe.showAttention': (layer?: unknown, head?: unknown) =>
      showAttention(ctx.engine, attention, layer, head),
    'loupe.clearAttention': () => attention.clear(),
    'loupe.openHeads': () => heads.show(),
  };
  return [
    gridEditor,
    headsEditor,
    attentionEditor,
    grid,
    attention,
    heads,
    ...Object.entries(commands).map(([id, fn]) => vscode.commands.registerCommand(id, fn)),
  ];
}

/** Layer, then head or all heads, in quick picks; or straight from arguments (layer, head | null). */
async function showAttention(
  engine: EngineState,
  attention: AttentionInEditor,
  layerArg: unknown,
  headArg: unknown,
): Promise<void> {
  const s = engine.status;
  if (s.kind !== 'ready') {
    void vscode.window.showWarningMessage(
      s.kind === 'failed' ? `Loupe: no model is loaded (${s.message})` : 'Loupe: the model is still loading.',
    );
    return;
  }
  const { nLayers, nHeads, name } = s.model;
  const isIndex = (v: unknown, n: number): v is number =>
    Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) < n;
  if (isIndex(layerArg, nLayers) && (headArg === null || isIndex(headArg, nHeads))) {
    attention.show({ layer: layerArg, head: headArg });
    return;
  }
  type LayerItem = vscode.QuickPickItem & { layer: number | null };
  const current = attention.current;
  const layerItems: LayerItem[] = [
    ...(current
      ? [{ label: '$(clear-all) Clear Attention', description: `now ${choiceName(current)}`, layer: null }]
      : []),
    ...Array.from({ length: nLayers }, (_, l) => ({
      label: `Layer ${l}`,
      description: `${nHeads} heads · blocks.${l}.attn.hook_pattern`,
      layer: l,
    })),
  ];
  const layer = await vscode.window.showQuickPick(layerItems, {
    title: `Loupe: Show Attention (${name}) 1/2`,
    placeHolder: 'The layer whose attention lights up the file where the cursor is',
  });
  if (!layer) return;
  if (layer.layer === null) return attention.clear();
  type HeadItem = vscode.QuickPickItem & { head: number | null };
  const headItems: HeadItem[] = [
    { label: `All heads of layer ${layer.layer}`, description: 'the mean of their patterns', head: null },
    ...Array.from({ length: nHeads }, (_, h) => ({
      label: `Head ${h}`,
      description: `L${layer.layer}H${h}`,
      head: h,
    })),
  ];
  const head = await vscode.window.showQuickPick(headItems, {
    title: `Loupe: Show Attention (${name}) 2/2`,
    placeHolder: 'A head, or all heads of the layer',
  });
  if (head) attention.show({ layer: layer.layer, head: head.head });
}

async function loadTunedLens(grid: LensGridPanel): Promise<void> {
  const current = tunedLensPath();
  const picked = await vscode.window.showOpenDialog({
    canSelectFiles: false,
    canSelectFolders: true,
    canSelectMany: false,
    openLabel: 'Load Tuned Lens',
    title: 'A tuned lens folder (config.json, params.safetensors)',
    defaultUri: current ? vscode.Uri.file(current) : undefined,
  });
  if (!picked?.[0]) return;
  const dir = picked[0].fsPath;
  if (!fs.existsSync(path.join(dir, 'params.safetensors'))) {
    const pickle = fs.existsSync(path.join(dir, 'params.pt'));
    void vscode.window.showErrorMessage(
      pickle
        ? `Loupe: ${path.basename(dir)} holds params.pt, a PyTorch pickle, which Loupe does not load; convert it once with 'python3 tools/convert_tuned_lens.py ${dir}'.`
        : `Loupe: ${path.basename(dir)} is not a tuned lens folder (no params.safetensors).`,
    );
    return;
  }
  await setPath('tunedLensPath', dir);
  grid.show('tuned');
}

async function trainTunedLens(ctx: LensContext, grid: LensGridPanel): Promise<void> {
  const s = ctx.engine.status;
  if (s.kind !== 'ready') {
    void vscode.window.showWarningMessage(
      'Loupe: load a model first; a tuned lens is trained for the loaded model.',
    );
    return;
  }
  const model = s.model;
  const title = (n: number) => `Loupe: Train Tuned Lens for ${model.name} (${n}/3)`;
  const corpus = await pickCorpus(
    title(1),
    'The text to train on: the lens learns to match the model’s own predictions on it',
  );
  if (!corpus) return;
  const stepsText = await vscode.window.showInputBox({
    title: title(2),
    prompt: 'Training steps of 1024 tokens each (tuned-lens trains 250; a few minutes on the default model)',
    value: '250',
    ignoreFocusOut: true,
    validateInput: (v) => (/^\s*[1-9]\d*\s*$/.test(v) ? null : 'a whole number of steps, 1 or more'),
  });
  if (stepsText === undefined) return;
  const outText = await vscode.window.showInputBox({
    title: title(3),
    prompt: 'Output folder: the lens is saved there (config.json, params.safetensors)',
    value: path.join(os.homedir(), 'loupe', 'tuned-lenses', `${model.name}-tuned-lens`),
    ignoreFocusOut: true,
    validateInput: (v) => (v.trim() ? null : 'an output folder is needed'),
  });
  if (outText === undefined) return;
  const raw = outText.trim();
  const outDir = path.resolve(expandHome(raw));
  if (ctx.jobs.isBusy(outDir)) {
    void vscode.window.showWarningMessage(`Loupe: ${path.basename(outDir)} is being trained already.`);
    return;
  }
  const outcome = await runJob(
    ctx.jobs,
    `Training a tuned lens for ${model.name}`,
    'trainTunedLens',
    {
      model: model.dir,
      threads: readConfig().threads,
      cacheDir: null,
      corpus,
      outDir,
      steps: Number(stepsText.trim()),
      batchTokens: null,
    },
    outDir,
  );
  if (outcome.kind === 'done') {
    const r = outcome.result;
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    const use = 'Show in the Lens Grid';
    const answer = await vscode.window.showInformationMessage(
      `Loupe: trained a tuned lens for ${model.name} in ${r.seconds.toFixed(0)} s (${r.steps} steps, ${r.tokens.toLocaleString('en-US')} tokens): mean KL to the model's output ${mean(r.initialKl).toFixed(3)} with the logit lens, ${mean(r.finalKl).toFixed(3)} with the tuned lens.`,
      use,
    );
    await setPath('tunedLensPath', r.outDir);
    if (answer === use) grid.show('tuned');
  } else if (outcome.kind === 'cancelled') {
    void vscode.window.showInformationMessage('Loupe: tuned lens training cancelled; nothing was written.');
  } else {
    const show = 'Show Log';
    if (
      (await vscode.window.showErrorMessage(
        `Loupe: tuned lens training failed: ${outcome.message}`,
        show,
      )) === show
    )
      ctx.log.show(true);
  }
}
