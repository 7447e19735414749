/**
 * The long-running commands, each run in the jobs engine (jobs.ts) with a
 * cancellable progress notification:
 *
 *   loupe.trainSae             Train SAE…: hook, corpus, architecture, latents, k, token
 *                              budget and output folder in quick picks; Cancel stops at a
 *                              checkpoint that Resume Training (here or in the tree) continues
 *   loupe.trainTranscoders     Train Transcoders…: layers, corpus, architecture, skip term, size,
 *                              k, token budget and output folder; written as a circuit-tracer
 *                              transcoder set; Cancel stops at a checkpoint that the same command
 *                              offers to resume
 *   loupe.computeDashboards    the loaded SAE's feature database from the workspace's files
 *   loupe.exportActivations    the active file's (or selection's) activations at chosen hooks,
 *                              to a .safetensors file
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EngineParams } from '../engine/host/protocol';
import { addFolder, expandHome, readConfig } from './config';
import { pickCorpus } from './corpusPicker';
import { EngineState } from './engineState';
import { JobsEngine, runJob } from './jobs';
import { ModelTree, nodeFolder } from './modelTree';

export interface JobsContext {
  readonly engine: EngineState;
  readonly jobs: JobsEngine;
  readonly tree: ModelTree;
}

const TRAIN_STEPS = 7;
const EXPANSIONS = [4, 8, 16, 32];
const DEFAULT_K = 32;
const DEFAULT_TOKENS = '2M';

export function registerJobCommands(ctx: JobsContext): vscode.Disposable[] {
  const commands: Record<string, (arg?: unknown) => unknown> = {
    'loupe.trainSae': () => trainSae(ctx),
    'loupe.trainTranscoders': () => trainTranscoders(ctx),
    'loupe.models.resumeTraining': (arg) => {
      const f = nodeFolder(arg);
      if (f) return resumeTraining(ctx, f.dir);
    },
    'loupe.computeDashboards': (arg) => computeDashboards(ctx, nodeFolder(arg)?.dir ?? null),
    'loupe.exportActivations': () => exportActivations(ctx),
  };
  return Object.entries(commands).map(([id, fn]) => vscode.commands.registerCommand(id, fn));
}

/** The loaded model, or null after telling the user why there is none. */
function readyModel(engine: EngineState): { dir: string; name: string } | null {
  const s = engine.status;
  if (s.kind === 'ready') return s.model;
  void vscode.window.showWarningMessage(
    s.kind === 'failed' ? `Loupe: no model is loaded (${s.message})` : 'Loupe: the model is still loading.',
  );
  return null;
}

function jobModel(model: { dir: string }): Pick<EngineParams<'trainSae'>, 'model' | 'threads' | 'cacheDir'> {
  return { model: model.dir, threads: readConfig().threads, cacheDir: null };
}

// ---- Train SAE… ----

async function trainSae(ctx: JobsContext): Promise<void> {
  const model = readyModel(ctx.engine);
  if (!model) return;
  const title = (n: number) => `Loupe: Train SAE on ${model.name} (${n}/${TRAIN_STEPS})`;
  const { hooks } = await ctx.engine.client.request('hooks', {});
  // SAEs read per-token activations: [batch, pos, ...] hooks only.
  const perToken = hooks.filter((h) => h.shape[0] === 'batch' && h.shape[1] === 'pos');
  const layers = Math.max(0, ...hooks.map((h) => Number(/^blocks\.(\d+)\./.exec(h.name)?.[1] ?? -1))) + 1;
  const suggested = `blocks.${Math.floor(layers / 2)}.hook_resid_post`;
  type HookItem = vscode.QuickPickItem & { hook: string; width: number };
  const hookItems: HookItem[] = perToken.map((h) => ({
    label: h.name,
    description: `[${h.shape.join(', ')}]`,
    hook: h.name,
    width: h.shape.slice(2).reduce((a, d) => a * Number(d), 1),
  }));
  const hook = await pick(hookItems, {
    title: title(1),
    placeHolder: 'The hook whose activations the SAE learns to reconstruct',
    active: hookItems.find((h) => h.hook === suggested),
  });
  if (!hook) return;

  const corpus = await pickCorpus(title(2), 'The text to train on: activations are streamed from it');
  if (!corpus) return;

  type ArchItem = vscode.QuickPickItem & { arch: 'topk' | 'relu' };
  const arch = await pick<ArchItem>(
    [
      {
        label: 'TopK',
        description: 'the k largest latents per token',
        detail:
          'Gao et al. 2024, with the auxiliary loss on dead latents; sparsity is set by k, no penalty to tune',
        arch: 'topk',
      },
      {
        label: 'ReLU',
        description: 'standard SAE with an L1 penalty',
        detail: 'The 2024 recipe: λ·Σ f·‖W_dec‖, warmed up over the first 5% of steps',
        arch: 'relu',
      },
    ],
    { title: title(3), placeHolder: 'Architecture' },
  );
  if (!arch) return;

  type SizeItem = vscode.QuickPickItem & { expansion: number };
  const size = await pick<SizeItem>(
    EXPANSIONS.map((e) => ({
      label: `${e}×`,
      description: `${(e * hook.width).toLocaleString('en-US')} latents`,
      expansion: e,
    })),
    { title: title(4), placeHolder: `Latents, as a multiple of d_in = ${hook.width}`, activeIndex: 1 },
  );
  if (!size) return;
  const dSae = size.expansion * hook.width;

  let k = DEFAULT_K;
  if (arch.arch === 'topk') {
    const typed = await vscode.window.showInputBox({
      title: title(5),
      prompt: `k: latents kept per token (1 to ${dSae})`,
      value: String(Math.min(DEFAULT_K, dSae)),
      ignoreFocusOut: true,
      validateInput: (v) => {
        const n = Number(v.trim());
        return Number.isInteger(n) && n >= 1 && n <= dSae ? null : `a whole number from 1 to ${dSae}`;
      },
    });
    if (typed === undefined) return;
    k = Number(typed.trim());
  }

  const tokensText = await vscode.window.showInputBox({
    title: title(6),
    prompt: 'Training tokens (e.g. 500k, 2M); the corpus repeats if it is shorter',
    value: DEFAULT_TOKENS,
    ignoreFocusOut: true,
    validateInput: (v) =>
      parseCount(v) === null ? 'a positive number of tokens, like 200000, 500k or 2M' : null,
  });
  if (tokensText === undefined) return;
  const trainingTokens = parseCount(tokensText)!;

  const hookTag = hook.hook
    .replace(/^blocks\./, 'L')
    .replace(/\.?hook_/g, '-')
    .replace(/\./g, '-');
  const defaultOut = path.join(
    os.homedir(),
    'loupe',
    'saes',
    `${model.name}-${hookTag}-${arch.arch}-${dSae}`,
  );
  const outText = await vscode.window.showInputBox({
    title: title(7),
    prompt: 'Output folder: the SAE is saved there in SAELens format (cfg.json, sae_weights.safetensors)',
    value: defaultOut,
    ignoreFocusOut: true,
    validateInput: (v) => outFolderProblem(v, corpus),
  });
  if (outText === undefined) return;
  const outDir = path.resolve(expandHome(outText.trim()));

  const existing = (
    await ctx.engine.client.request('describeFolders', { models: [], saes: [outDir], hubCache: null })
  ).saes[0];
  if (existing?.checkpoint) {
    const cp = existing.checkpoint;
    type ResumeItem = vscode.QuickPickItem & { resume: boolean };
    const choice = await pick<ResumeItem>(
      [
        {
          label: `Resume from step ${cp.step} of ${cp.steps}`,
          detail: `Continues the stopped run with its own settings${cp.hook ? ` (${cp.hook})` : ''}`,
          resume: true,
        },
        {
          label: 'Start Over',
          detail: 'Discards the checkpoint and trains with the settings chosen now',
          resume: false,
        },
      ],
      { title: `Loupe: ${path.basename(outDir)} holds a stopped training run` },
    );
    if (!choice) return;
    if (choice.resume) return resumeTraining(ctx, outDir);
  } else if (existing?.config) {
    const replace = 'Replace';
    const answer = await vscode.window.showWarningMessage(
      `${outDir} already holds an SAE (${existing.config.architecture}, ${existing.config.hook}). Replace it?`,
      { modal: true },
      replace,
    );
    if (answer !== replace) return;
  }
  await runTraining(ctx, {
    ...jobModel(model),
    hook: hook.hook,
    corpus,
    outDir,
    architecture: arch.arch,
    expansion: size.expansion,
    k,
    trainingTokens,
    batchSize: null,
    contextSize: null,
    checkpointEvery: null,
    seed: null,
    resume: false,
  });
}

/** Continues a stopped run from its checkpoint, with the hook and corpus it recorded, on the loaded model. */
async function resumeTraining(ctx: JobsContext, dir: string): Promise<void> {
  const model = readyModel(ctx.engine);
  if (!model) return;
  const folder = (
    await ctx.engine.client.request('describeFolders', { models: [], saes: [dir], hubCache: null })
  ).saes[0];
  const cp = folder?.checkpoint;
  if (!cp || !cp.hook || !cp.corpus) {
    void vscode.window.showErrorMessage(
      `Loupe: ${dir} has no checkpoint that says what it trains; start it again with "Loupe: Train SAE…".`,
    );
    return;
  }
  // The checkpoint holds the run's own settings; these are not used when resuming.
  await runTraining(ctx, {
    ...jobModel(model),
    hook: cp.hook,
    corpus: cp.corpus,
    outDir: folder.dir,
    architecture: 'topk',
    expansion: 1,
    k: 1,
    trainingTokens: 1,
    batchSize: null,
    contextSize: null,
    checkpointEvery: null,
    seed: null,
    resume: true,
  });
}

async function runTraining(ctx: JobsContext, params: EngineParams<'trainSae'>): Promise<void> {
  const name = path.basename(params.outDir);
  if (ctx.jobs.isBusy(params.outDir)) {
    void vscode.window.showWarningMessage(`Loupe: ${name} is being trained already.`);
    return;
  }
  const outcome = await runJob(ctx.jobs, `Training SAE ${name}`, 'trainSae', params, params.outDir);
  // Trained or stopped, the folder belongs in the tree: to load, or to resume.
  if (outcome.kind !== 'failed' || fs.existsSync(params.outDir)) await addFolder('saeFolders', params.outDir);
  await ctx.tree.refresh();
  if (outcome.kind === 'done') {
    const r = outcome.result;
    const m = r.metrics;
    const summary = m
      ? `FVU ${m.fvu.toFixed(3)}, L0 ${m.l0.toFixed(1)}, dead ${(100 * m.deadFraction).toFixed(1)}%`
      : 'no steps run';
    const load = 'Load SAE';
    const dashboards = 'Load and Compute Dashboards';
    const answer = await vscode.window.showInformationMessage(
      `Loupe: trained ${name} (${summary}; ${r.steps} steps, ${r.tokens.toLocaleString('en-US')} tokens, ${formatSeconds(r.seconds)}).`,
      load,
      dashboards,
    );
    if (answer === load || answer === dashboards) {
      await ctx.tree.loadSae(r.outDir);
      const s = ctx.engine.status;
      if (answer === dashboards && s.kind === 'ready' && s.sae?.dir === r.outDir) {
        await computeDashboards(ctx, r.outDir);
      }
    }
  } else if (outcome.kind === 'cancelled') {
    const cp = ctx.tree.sae(params.outDir)?.checkpoint;
    const resume = 'Resume';
    const where = cp ? `at step ${cp.step} of ${cp.steps}` : '';
    const answer = await vscode.window.showInformationMessage(
      cp
        ? `Loupe: training of ${name} stopped ${where}. Resume it now, or later from the Models & SAEs view.`
        : `Loupe: training of ${name} stopped before its first step; nothing was saved.`,
      ...(cp ? [resume] : []),
    );
    if (answer === resume) await resumeTraining(ctx, params.outDir);
  } else {
    void showFailure(ctx, `Loupe: training ${name} failed: ${outcome.message}`);
  }
}

// ---- Train Transcoders… ----

const TRANSCODER_STEPS = 8;

async function trainTranscoders(ctx: JobsContext): Promise<void> {
  const model = readyModel(ctx.engine);
  if (!model) return;
  const title = (n: number) => `Loupe: Train Transcoders on ${model.name} (${n}/${TRANSCODER_STEPS})`;
  const { hooks } = await ctx.engine.client.request('hooks', {});
  const nLayers = Math.max(0, ...hooks.map((h) => Number(/^blocks\.(\d+)\./.exec(h.name)?.[1] ?? -1))) + 1;
  const dModel = Number(hooks.find((h) => h.name === 'blocks.0.hook_mlp_out')?.shape[2] ?? 0);
  type LayerItem = vscode.QuickPickItem & { layers: number[] };
  const layer = await pick<LayerItem>(
    [
      {
        label: 'Every layer',
        description: `${nLayers} transcoders, one forward pass per batch`,
        detail: 'A complete set, as circuit-tracer needs for attribution graphs',
        layers: [],
      },
      ...Array.from({ length: nLayers }, (_, l) => ({
        label: `Layer ${l}`,
        description: `blocks.${l}.ln2.hook_normalized → blocks.${l}.hook_mlp_out`,
        layers: [l],
      })),
    ],
    {
      title: title(1),
      placeHolder: 'The MLPs to replace: each transcoder reads its input and predicts its output',
    },
  );
  if (!layer) return;

  const corpus = await pickCorpus(title(2), 'The text to train on: activations are streamed from it');
  if (!corpus) return;

  type ArchItem = vscode.QuickPickItem & { arch: 'topk' | 'relu' | 'jumprelu' };
  const arch = await pick<ArchItem>(
    [
      {
        label: 'TopK',
        description: 'the k largest features per token',
        detail: 'Sparsity set by k, no penalty to tune',
        arch: 'topk',
      },
      {
        label: 'ReLU',
        description: 'an L1 penalty',
        detail: 'λ·Σ f·‖W_dec‖, warmed up over the first 5% of steps',
        arch: 'relu',
      },
      {
        label: 'JumpReLU',
        description: 'a learned threshold per feature and an L0 penalty',
        detail: 'Rajamanoharan et al. 2024, as Gemma Scope trains them',
        arch: 'jumprelu',
      },
    ],
    { title: title(3), placeHolder: 'Architecture' },
  );
  if (!arch) return;

  type SkipItem = vscode.QuickPickItem & { skip: boolean };
  const skip = await pick<SkipItem>(
    [
      {
        label: 'With a skip term',
        detail: 'Adds x·W_skipᵀ, a linear part beside the features (Paulo et al. 2025)',
        skip: true,
      },
      { label: 'Without', detail: 'Features only', skip: false },
    ],
    { title: title(4), placeHolder: 'Skip transcoder?' },
  );
  if (!skip) return;

  type SizeItem = vscode.QuickPickItem & { expansion: number };
  const size = await pick<SizeItem>(
    EXPANSIONS.map((e) => ({
      label: `${e}×`,
      description: `${(e * dModel).toLocaleString('en-US')} features per layer`,
      expansion: e,
    })),
    { title: title(5), placeHolder: `Features, as a multiple of d_model = ${dModel}`, activeIndex: 1 },
  );
  if (!size) return;
  const dTc = size.expansion * dModel;

  let k = DEFAULT_K;
  if (arch.arch === 'topk') {
    const typed = await vscode.window.showInputBox({
      title: title(6),
      prompt: `k: features kept per token (1 to ${dTc})`,
      value: String(Math.min(DEFAULT_K, dTc)),
      ignoreFocusOut: true,
      validateInput: (v) => {
        const n = Number(v.trim());
        return Number.isInteger(n) && n >= 1 && n <= dTc ? null : `a whole number from 1 to ${dTc}`;
      },
    });
    if (typed === undefined) return;
    k = Number(typed.trim());
  }

  const tokensText = await vscode.window.showInputBox({
    title: title(7),
    prompt: 'Training tokens (e.g. 500k, 2M); the corpus repeats if it is shorter',
    value: DEFAULT_TOKENS,
    ignoreFocusOut: true,
    validateInput: (v) =>
      parseCount(v) === null ? 'a positive number of tokens, like 200000, 500k or 2M' : null,
  });
  if (tokensText === undefined) return;
  const trainingTokens = parseCount(tokensText)!;

  const which = layer.layers.length === 0 ? 'all' : `L${layer.layers[0]}`;
  const defaultOut = path.join(
    os.homedir(),
    'loupe',
    'transcoders',
    `${model.name}-${which}-${arch.arch}${skip.skip ? '-skip' : ''}-${dTc}`,
  );
  const outText = await vscode.window.showInputBox({
    title: title(8),
    prompt: 'Output folder: a circuit-tracer transcoder set (config.yaml, layer_{i}.safetensors)',
    value: defaultOut,
    ignoreFocusOut: true,
    validateInput: (v) => outFolderProblem(v, corpus),
  });
  if (outText === undefined) return;
  const outDir = path.resolve(expandHome(outText.trim()));

  let resume = false;
  if (fs.existsSync(path.join(outDir, 'checkpoint', 'state.json'))) {
    type ResumeItem = vscode.QuickPickItem & { resume: boolean };
    const choice = await pick<ResumeItem>(
      [
        { label: 'Resume', detail: 'Continues the stopped run with its own settings', resume: true },
        {
          label: 'Start Over',
          detail: 'Discards the checkpoint and trains with the settings chosen now',
          resume: false,
        },
      ],
      { title: `Loupe: ${path.basename(outDir)} holds a stopped training run` },
    );
    if (!choice) return;
    resume = choice.resume;
  }
  const params: EngineParams<'trainTranscoders'> = {
    ...jobModel(model),
    layers: layer.layers,
    corpus,
    outDir,
    architecture: arch.arch,
    skip: skip.skip,
    expansion: size.expansion,
    k,
    trainingTokens,
    batchSize: null,
    contextSize: null,
    checkpointEvery: null,
    seed: null,
    resume,
  };
  const name = path.basename(outDir);
  if (ctx.jobs.isBusy(outDir)) {
    void vscode.window.showWarningMessage(`Loupe: ${name} is being trained already.`);
    return;
  }
  const outcome = await runJob(ctx.jobs, `Training transcoders ${name}`, 'trainTranscoders', params, outDir);
  if (fs.existsSync(path.join(outDir, 'config.yaml'))) await addFolder('saeFolders', outDir);
  await ctx.tree.refresh();
  if (outcome.kind === 'done') {
    const r = outcome.result;
    const perLayer = r.layers
      .map(
        (l) =>
          `L${l.layer} FVU ${l.fvu.toFixed(3)}, L0 ${l.l0.toFixed(1)}, dead ${(100 * l.deadFraction).toFixed(1)}%`,
      )
      .join('; ');
    void vscode.window.showInformationMessage(
      `Loupe: trained ${name} (${perLayer || 'no steps run'}; ${r.steps} steps, ${r.tokens.toLocaleString('en-US')} tokens, ${formatSeconds(r.seconds)}).`,
    );
  } else if (outcome.kind === 'cancelled') {
    void vscode.window.showInformationMessage(
      `Loupe: training of ${name} stopped; run "Loupe: Train Transcoders…" with the same folder to resume it.`,
    );
  } else {
    void showFailure(ctx, `Loupe: training ${name} failed: ${outcome.message}`);
  }
}

// ---- Compute Feature Dashboards for the Workspace ----

async function computeDashboards(ctx: JobsContext, saeArg: string | null): Promise<void> {
  const model = readyModel(ctx.engine);
  if (!model) return;
  const s = ctx.engine.status;
  let saeDir = saeArg ?? (s.kind === 'ready' ? (s.sae?.dir ?? null) : null);
  if (!saeDir) {
    void vscode.window.showWarningMessage(
      'Loupe: load an SAE first; dashboards are built for the loaded SAE.',
    );
    return;
  }
  const folder = (
    await ctx.engine.client.request('describeFolders', {
      models: [model.dir],
      saes: [saeDir],
      hubCache: null,
    })
  ).saes[0];
  if (!folder?.config || folder.problem) {
    void vscode.window.showErrorMessage(`Loupe: ${folder?.problem ?? `${saeDir} is not an SAE folder`}`);
    return;
  }
  if (!folder.fits.includes(path.resolve(model.dir))) {
    void vscode.window.showErrorMessage(
      `Loupe: ${folder.name} reads ${folder.config.hook} with d_in ${folder.config.dIn}, which ${model.name} does not have; load the model it was trained on first.`,
    );
    return;
  }
  const corpus = await pickCorpus(
    `Loupe: Feature dashboards for ${folder.name}`,
    'The text whose tokens the dashboards show (top activations, bands, labels)',
    true,
  );
  if (!corpus) return;
  if (path.resolve(saeDir) === ctx.engine.bundledSaeDir) {
    // The bundled SAE is part of Loupe's install (updates replace it, and its own dashboards ship with it).
    const copy = await copyBundledSae(ctx, saeDir);
    if (!copy) return;
    saeDir = copy;
  } else if (folder.config.hasFeatureDatabase) {
    const rebuild = 'Rebuild';
    const answer = await vscode.window.showWarningMessage(
      `${folder.name} already has feature dashboards. Rebuild them from ${path.basename(corpus)}? The current ones stay until the new ones are complete.`,
      { modal: true },
      rebuild,
    );
    if (answer !== rebuild) return;
  }
  const name = path.basename(saeDir);
  if (ctx.jobs.isBusy(saeDir)) {
    void vscode.window.showWarningMessage(`Loupe: ${name} is busy with another job.`);
    return;
  }
  const outcome = await runJob(
    ctx.jobs,
    `Feature dashboards for ${name}`,
    'buildDashboards',
    { ...jobModel(model), sae: saeDir, corpus, maxTokens: null, contextSize: null, seed: null },
    saeDir,
  );
  await ctx.tree.refresh();
  if (outcome.kind === 'done') {
    const r = outcome.result;
    const now = ctx.engine.status;
    // Reload so that the inspector, hovers and panels show the new labels.
    if (now.kind === 'ready' && now.sae?.dir === path.resolve(saeDir)) await ctx.engine.load();
    else await ctx.tree.loadSae(saeDir);
    void vscode.window.showInformationMessage(
      `Loupe: dashboards for ${r.features.toLocaleString('en-US')} features of ${name} (${r.liveFeatures.toLocaleString('en-US')} active) from ${r.tokens.toLocaleString('en-US')} tokens in ${r.documents} files, ${formatSeconds(r.seconds)}.`,
    );
  } else if (outcome.kind === 'cancelled') {
    void vscode.window.showInformationMessage(
      `Loupe: dashboards for ${name} cancelled; ${folder.config.hasFeatureDatabase ? 'the previous ones are unchanged' : 'nothing was written'}.`,
    );
  } else {
    void showFailure(ctx, `Loupe: dashboards for ${name} failed: ${outcome.message}`);
  }
}

/** Copies the bundled SAE (without its dashboards) to a folder the user picks; returns the copy. */
async function copyBundledSae(ctx: JobsContext, saeDir: string): Promise<string | null> {
  const choose = 'Choose Folder…';
  const answer = await vscode.window.showInformationMessage(
    "The bundled SAE is part of Loupe's installation, which updates replace. Loupe copies it (without its dashboards) into a folder you choose and builds the dashboards there.",
    { modal: true },
    choose,
  );
  if (answer !== choose) return null;
  const picked = await vscode.window.showOpenDialog({
    canSelectFiles: false,
    canSelectFolders: true,
    canSelectMany: false,
    openLabel: 'Copy Here',
    title: 'Where to keep a copy of the bundled SAE',
  });
  if (!picked?.[0]) return null;
  const target = path.join(picked[0].fsPath, path.basename(saeDir));
  if (fs.existsSync(target)) {
    void vscode.window.showErrorMessage(`Loupe: ${target} exists already; choose another folder.`);
    return null;
  }
  try {
    await ctx.engine.client.request('copyResult', {
      from: saeDir,
      to: target,
      kind: 'sae',
      leaveOut: ['features'],
    });
  } catch (err) {
    void vscode.window.showErrorMessage(`Loupe: ${(err as Error).message}`);
    return null;
  }
  await addFolder('saeFolders', target);
  return target;
}

// ---- Export Activations… ----

async function exportActivations(ctx: JobsContext): Promise<void> {
  const model = readyModel(ctx.engine);
  if (!model) return;
  const editor = vscode.window.activeTextEditor;
  if (!editor) {
    void vscode.window.showWarningMessage('Loupe: open a file to export its activations.');
    return;
  }
  const doc = editor.document;
  const selected = !editor.selection.isEmpty;
  const text = selected ? doc.getText(editor.selection) : doc.getText();
  const fileName = path.basename(doc.uri.path);
  const what = selected ? `the selection in ${fileName}` : fileName;
  const { hooks } = await ctx.engine.client.request('hooks', {});
  type HookItem = vscode.QuickPickItem & { hook: string | null };
  const items: HookItem[] = [
    { label: 'logits', description: '[batch, pos, d_vocab]', hook: null },
    ...hooks.map((h) => ({
      label: h.name,
      description: `[${h.shape.join(', ')}]`,
      hook: h.name,
      picked: /^blocks\.\d+\.hook_resid_post$/.test(h.name),
    })),
  ];
  const chosen = await vscode.window.showQuickPick(items, {
    title: `Loupe: Export Activations of ${what}`,
    placeHolder: "Hooks to export; each block's hook_resid_post is ticked",
    canPickMany: true,
    matchOnDescription: true,
    ignoreFocusOut: true,
  });
  if (!chosen || chosen.length === 0) return;
  const base =
    doc.uri.scheme === 'file' ? doc.uri.fsPath : path.join(workspaceDir() ?? os.homedir(), fileName);
  const target = await vscode.window.showSaveDialog({
    title: `Loupe: Export Activations of ${what}`,
    saveLabel: 'Export',
    defaultUri: vscode.Uri.file(`${base.replace(/\.[^./\\]*$/, '')}.activations.safetensors`),
    filters: { Safetensors: ['safetensors'] },
  });
  if (!target) return;
  const out = target.fsPath;
  const outcome = await runJob(
    ctx.jobs,
    `Exporting activations of ${what}`,
    'exportActivations',
    {
      ...jobModel(model),
      text,
      hooks: chosen.flatMap((c) => (c.hook === null ? [] : [c.hook])),
      logits: chosen.some((c) => c.hook === null),
      out,
      source: doc.uri.scheme === 'file' ? doc.uri.fsPath : doc.uri.toString(),
    },
    out,
  );
  if (outcome.kind === 'done') {
    const r = outcome.result;
    const copy = 'Copy Path';
    const answer = await vscode.window.showInformationMessage(
      // Two of the tensors are `tokens` and `attention_mask`.
      `Loupe: exported ${r.tensors.length - 2} activation tensors for ${r.tokens.toLocaleString('en-US')} tokens` +
        `${r.windows > 1 ? ` (${r.windows} windows of the model's context, one per batch row)` : ''} to ${path.basename(r.out)} (${megabytes(r.bytes)}).`,
      copy,
    );
    if (answer === copy) await vscode.env.clipboard.writeText(r.out);
  } else if (outcome.kind === 'failed') {
    void showFailure(ctx, `Loupe: export failed: ${outcome.message}`);
  }
}

// ---- helpers ----

async function pick<T extends vscode.QuickPickItem>(
  items: T[],
  options: { title: string; placeHolder?: string; active?: T; activeIndex?: number },
): Promise<T | undefined> {
  const qp = vscode.window.createQuickPick<T>();
  qp.title = options.title;
  qp.placeholder = options.placeHolder;
  qp.items = items;
  qp.ignoreFocusOut = true;
  qp.matchOnDescription = true;
  const active =
    options.active ?? (options.activeIndex !== undefined ? items[options.activeIndex] : undefined);
  if (active) qp.activeItems = [active];
  const chosen = await new Promise<T | undefined>((resolve) => {
    qp.onDidAccept(() => resolve(qp.selectedItems[0]));
    qp.onDidHide(() => resolve(undefined));
    qp.show();
  });
  qp.dispose();
  return chosen;
}

function outFolderProblem(value: string, corpus: string): string | null {
  const v = value.trim();
  if (!v) return 'an output folder is needed';
  const out = path.resolve(expandHome(v));
  const rel = path.relative(corpus, out);
  if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) {
    return 'the output folder must be outside the corpus, or training would read its own files as text';
  }
  if (fs.existsSync(out) && !fs.statSync(out).isDirectory()) return `${out} is a file`;
  return null;
}

/** 2000000, 2,000,000, 500k, 2M, 1.5M → a token count. */
function parseCount(text: string): number | null {
  const m = /^\s*([\d.,_]+)\s*([kKmMbB]?)\s*$/.exec(text);
  if (!m) return null;
  const n = Number(m[1].replace(/[,_]/g, ''));
  const scale = { '': 1, k: 1e3, m: 1e6, b: 1e9 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'b'];
  const v = Math.round(n * scale);
  return Number.isFinite(v) && v > 0 && Number.isSafeInteger(v) ? v : null;
}

function workspaceDir(): string | undefined {
  return vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === 'file')?.uri.fsPath;
}

function formatSeconds(s: number): string {
  return s < 90 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function megabytes(n: number): string {
  return n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} KB`;
}

async function showFailure(ctx: JobsContext, message: string): Promise<void> {
  const show = 'Show Log';
  if ((await vscode.window.showErrorMessage(message, show)) === show) ctx.jobs.log.show(true);
}
