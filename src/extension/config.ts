/**
 * Loupe's settings, read in one place and typed (package.json declares them
 * for the Settings UI).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';

export interface LoupeConfig {
  /** A checkpoint folder; '' for the bundled default model. */
  readonly modelPath: string;
  /** An SAE folder; '' for the bundled default SAE. */
  readonly saePath: string;
  /** onnxruntime threads; 0 for one per core. */
  readonly threads: number;
  readonly showTokenBoundaries: boolean;
}

const SECTION = 'loupe';

export function readConfig(): LoupeConfig {
  const c = vscode.workspace.getConfiguration(SECTION);
  return {
    modelPath: resolvePath(c.get<string>('modelPath', '')),
    saePath: resolvePath(c.get<string>('saePath', '')),
    threads: Math.max(0, Math.floor(c.get<number>('threads', 0))),
    showTokenBoundaries: c.get<boolean>('showTokenBoundaries', true),
  };
}

/** Whether a configuration change touches the settings that decide what the engine loads. */
export function affectsEngine(e: vscode.ConfigurationChangeEvent): boolean {
  return ['modelPath', 'saePath', 'threads'].some((k) => e.affectsConfiguration(`${SECTION}.${k}`));
}

export function affectsDisplay(e: vscode.ConfigurationChangeEvent): boolean {
  return e.affectsConfiguration(`${SECTION}.showTokenBoundaries`);
}

/**
 * Sets a path setting where the user will see it take effect: where it is
 * already set (a workspace value would hide a user one), else for the user.
 */
export async function setPath(key: 'modelPath' | 'saePath', value: string): Promise<void> {
  const c = vscode.workspace.getConfiguration(SECTION);
  const info = c.inspect<string>(key);
  const target =
    info?.workspaceFolderValue !== undefined
      ? vscode.ConfigurationTarget.WorkspaceFolder
      : info?.workspaceValue !== undefined
        ? vscode.ConfigurationTarget.Workspace
        : vscode.ConfigurationTarget.Global;
  await c.update(key, value, target);
}

export async function toggleTokenBoundaries(): Promise<void> {
  const c = vscode.workspace.getConfiguration(SECTION);
  await c.update(
    'showTokenBoundaries',
    !c.get<boolean>('showTokenBoundaries', true),
    vscode.ConfigurationTarget.Global,
  );
}

/** `~` and workspace-relative paths, as users type them into settings. */
function resolvePath(p: string): string {
  const trimmed = p.trim();
  if (!trimmed) return '';
  const home = process.env.HOME ?? process.env.USERPROFILE ?? '';
  const expanded = trimmed.startsWith('~') ? path.join(home, trimmed.slice(1)) : trimmed;
  if (path.isAbsolute(expanded)) return expanded;
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  return folder ? path.join(folder, expanded) : path.resolve(expanded);
}
