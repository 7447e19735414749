/**
 * Loupe's commands, one small factory each, registered together in
 * `registerCommands` (package.json lists them for the palette).
 */
import * as vscode from 'vscode';
import { DocumentAnalyses } from './analyses';
import { setPath, toggleTokenBoundaries } from './config';
import { EngineState } from './engineState';
import { HeatMap } from './heatMap';

export interface CommandContext {
  readonly engine: EngineState;
  readonly analyses: DocumentAnalyses;
  readonly heatMap: HeatMap;
  readonly log: vscode.LogOutputChannel;
}

type Command = (...args: unknown[]) => unknown;

export function registerCommands(ctx: CommandContext): vscode.Disposable[] {
  const commands: Record<string, Command> = {
    'loupe.chooseModel': chooseModel(ctx),
    'loupe.loadModel': loadFolder(
      'modelPath',
      'Load Model',
      'Choose a Hugging Face checkpoint folder (config.json, model.safetensors, tokenizer.json)',
    ),
    'loupe.loadSae': loadFolder(
      'saePath',
      'Load SAE',
      'Choose an SAE or transcoder folder (SAELens cfg.json, Gemma Scope params.npz, a transcoder set config.yaml)',
    ),
    'loupe.useBundled': useBundled,
    'loupe.reload': () => ctx.engine.load(),
    'loupe.showHeatMap': showHeatMap(ctx),
    'loupe.nextOccurrence': () => ctx.heatMap.navigate('next'),
    'loupe.previousOccurrence': () => ctx.heatMap.navigate('previous'),
    'loupe.clearHeatMap': () => ctx.heatMap.clear(),
    'loupe.toggleTokenBoundaries': toggleTokenBoundaries,
    'loupe.showLog': () => ctx.log.show(true),
    'loupe.showHooks': showHooks(ctx),
  };
  return Object.entries(commands).map(([id, fn]) => vscode.commands.registerCommand(id, fn));
}

function chooseModel(ctx: CommandContext): Command {
  return async () => {
    const items: (vscode.QuickPickItem & { command: string })[] = [
      { label: '$(folder-opened) Load Model Folder…', command: 'loupe.loadModel' },
      { label: '$(folder-opened) Load SAE Folder…', command: 'loupe.loadSae' },
      { label: '$(package) Use the Bundled Model and SAE', command: 'loupe.useBundled' },
      { label: '$(refresh) Reload', command: 'loupe.reload' },
      { label: '$(output) Show Log', command: 'loupe.showLog' },
    ];
    const s = ctx.engine.status;
    const pick = await vscode.window.showQuickPick(items, {
      title: 'Loupe',
      placeHolder: s.kind === 'ready' ? `${s.model.name} · ${s.sae?.name ?? 'no SAE'}` : undefined,
    });
    if (pick) await vscode.commands.executeCommand(pick.command);
  };
}

function loadFolder(key: 'modelPath' | 'saePath', openLabel: string, title: string): Command {
  return async () => {
    const picked = await vscode.window.showOpenDialog({
      canSelectFiles: false,
      canSelectFolders: true,
      canSelectMany: false,
      openLabel,
      title,
    });
    // The settings change reloads the engine (see extension.ts).
    if (picked?.[0]) await setPath(key, picked[0].fsPath);
  };
}

async function useBundled(): Promise<void> {
  await setPath('modelPath', '');
  await setPath('saePath', '');
}

function showHeatMap(ctx: CommandContext): Command {
  return async (arg?: unknown) => {
    if (typeof arg === 'number' && Number.isSafeInteger(arg) && arg >= 0) return ctx.heatMap.show(arg);
    const editor = vscode.window.activeTextEditor;
    const analysis = editor ? ctx.analyses.ready(editor.document) : undefined;
    if (!editor || !analysis) {
      void vscode.window.showInformationMessage(
        'Loupe: open a file and wait for its analysis to choose a feature.',
      );
      return;
    }
    if (!analysis.hasFeatures) {
      void vscode.window.showInformationMessage('Loupe: a heat map needs an SAE; load one first.');
      return;
    }
    const { features } = await ctx.engine.client.request('fileFeatures', {
      document: analysis.uri,
      version: analysis.version,
      limit: 500,
    });
    type Item = vscode.QuickPickItem & { feature: number };
    const listed: Item[] = features.map((f) => ({
      label: `#${f.index}`,
      description: f.label ?? undefined,
      detail: `max ${f.act.toFixed(2)} in this file · active on ${f.tokens} token${f.tokens === 1 ? '' : 's'}`,
      feature: f.index,
    }));
    const quickPick = vscode.window.createQuickPick<Item>();
    quickPick.title = 'Loupe: Show Feature Heat Map';
    quickPick.placeholder = 'A feature active in this file (strongest first), or type a feature number';
    quickPick.matchOnDescription = true;
    quickPick.items = listed;
    quickPick.onDidChangeValue((value) => {
      const m = /^#?(\d+)$/.exec(value.trim());
      const typed = m ? Number(m[1]) : -1;
      const extra: Item[] =
        typed >= 0 && !listed.some((i) => i.feature === typed)
          ? [{ label: `#${typed}`, description: 'not active in this file', feature: typed, alwaysShow: true }]
          : [];
      quickPick.items = [...extra, ...listed];
    });
    const chosen = await new Promise<Item | undefined>((resolve) => {
      quickPick.onDidAccept(() => resolve(quickPick.selectedItems[0]));
      quickPick.onDidHide(() => resolve(undefined));
      quickPick.show();
    });
    quickPick.dispose();
    if (chosen) await ctx.heatMap.show(chosen.feature);
  };
}

function showHooks(ctx: CommandContext): Command {
  return async () => {
    const s = ctx.engine.status;
    if (s.kind !== 'ready') {
      void vscode.window.showWarningMessage(
        s.kind === 'failed'
          ? `Loupe: no model is loaded (${s.message})`
          : 'Loupe: the model is still loading.',
      );
      return;
    }
    const { hooks } = await ctx.engine.client.request('hooks', {});
    ctx.log.info(`${s.model.name}: ${hooks.length} hook points`);
    for (const h of hooks) ctx.log.info(`${h.name} [${h.shape.join(', ')}]`);
    ctx.log.show(true);
  };
}
