/**
 * Loupe's settings, read in one place and typed (package.json declares them
 * for the Settings UI).
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { maxThreads } from '../shared/threads';

export interface LoupeConfig {
  /** A checkpoint folder; '' for the bundled default model. */
  readonly modelPath: string;
  /** An SAE folder; '' for the bundled default SAE; null for none (the setting says "none"). */
  readonly saePath: string | null;
  /** Folders the Models & SAEs tree lists besides the bundled ones (added with its + buttons). */
  readonly modelFolders: readonly string[];
  readonly saeFolders: readonly string[];
  /** onnxruntime threads; 0 for one per core. */
  readonly threads: number;
  readonly showTokenBoundaries: boolean;
}

const SECTION = 'loupe';

export function readConfig(): LoupeConfig {
  const c = vscode.workspace.getConfiguration(SECTION);
  return {
    modelPath: resolvePath(c.get<string>('modelPath', '')),
    saePath: isNoSae(c.get<string>('saePath', '')) ? null : resolvePath(c.get<string>('saePath', '')),
    modelFolders: folderList(c.get<unknown>('modelFolders', [])),
    saeFolders: folderList(c.get<unknown>('saeFolders', [])),
    threads: threadsSetting(c.get<unknown>('threads', 0)),
    showTokenBoundaries: c.get<boolean>('showTokenBoundaries', true),
  };
}

/** loupe.threads as a count the engine can use: 0 (one per core) up to the bound --threads has; anything else, 0. */
function threadsSetting(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return 0;
  return Math.min(Math.floor(value), maxThreads(os.availableParallelism()));
}

/** Whether a configuration change touches the settings that decide what the engine loads. */
export function affectsEngine(e: vscode.ConfigurationChangeEvent): boolean {
  return ['modelPath', 'saePath', 'threads'].some((k) => e.affectsConfiguration(`${SECTION}.${k}`));
}

/** Whether a configuration change touches what the Models & SAEs tree lists. */
export function affectsFolders(e: vscode.ConfigurationChangeEvent): boolean {
  return ['modelPath', 'saePath', 'modelFolders', 'saeFolders'].some((k) =>
    e.affectsConfiguration(`${SECTION}.${k}`),
  );
}

export function affectsDisplay(e: vscode.ConfigurationChangeEvent): boolean {
  return e.affectsConfiguration(`${SECTION}.showTokenBoundaries`);
}

/**
 * `loupe.tunedLensPath`: the tuned lens folder the Lens Grid's tuned lens
 * reads; null for none. Read on its own, apart from `readConfig`: only the
 * grid needs it, and changing it does not reload the engine.
 */
export function tunedLensPath(): string | null {
  return resolvePath(vscode.workspace.getConfiguration(SECTION).get<string>('tunedLensPath', '')) || null;
}

export function affectsTunedLens(e: vscode.ConfigurationChangeEvent): boolean {
  return e.affectsConfiguration(`${SECTION}.tunedLensPath`);
}

/**
 * Sets a path setting where the user will see it take effect: where it is
 * already set (a workspace value would hide a user one), else for the user.
 */
export async function setPath(key: 'modelPath' | 'saePath' | 'tunedLensPath', value: string): Promise<void> {
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

/** The `loupe.saePath` value that means "no SAE" (an empty one means the bundled SAE). */
export const NO_SAE = 'none';

function isNoSae(value: string): boolean {
  return value.trim().toLowerCase() === NO_SAE;
}

/** Adds a folder to `loupe.modelFolders` or `loupe.saeFolders` where the list is set (else for the user). */
export async function addFolder(key: 'modelFolders' | 'saeFolders', dir: string): Promise<void> {
  const c = vscode.workspace.getConfiguration(SECTION);
  const info = c.inspect<unknown>(key);
  const target =
    info?.workspaceValue !== undefined
      ? vscode.ConfigurationTarget.Workspace
      : vscode.ConfigurationTarget.Global;
  const current = rawList(
    target === vscode.ConfigurationTarget.Workspace ? info?.workspaceValue : info?.globalValue,
  );
  if (current.some((d) => resolvePath(d) === dir)) return;
  await c.update(key, [...current, dir], target);
}

/** Removes a folder from the list at every level it is set in. */
export async function removeFolder(key: 'modelFolders' | 'saeFolders', dir: string): Promise<void> {
  const c = vscode.workspace.getConfiguration(SECTION);
  const info = c.inspect<unknown>(key);
  const levels: [unknown, vscode.ConfigurationTarget][] = [
    [info?.globalValue, vscode.ConfigurationTarget.Global],
    [info?.workspaceValue, vscode.ConfigurationTarget.Workspace],
  ];
  for (const [value, target] of levels) {
    const list = rawList(value);
    const kept = list.filter((d) => resolvePath(d) !== dir);
    if (kept.length !== list.length) await c.update(key, kept.length > 0 ? kept : undefined, target);
  }
}

function rawList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function folderList(value: unknown): string[] {
  return [
    ...new Set(
      rawList(value)
        .map(resolvePath)
        .filter((d) => d !== ''),
    ),
  ];
}

/** `~` and workspace-relative paths, as users type them into settings. */
function resolvePath(p: string): string {
  const trimmed = p.trim();
  if (!trimmed) return '';
  const expanded = expandHome(trimmed);
  if (path.isAbsolute(expanded)) return expanded;
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  return folder ? path.join(folder, expanded) : path.resolve(expanded);
}

/** `~` and `~/…` as the user's home folder, in settings and in typed output folders alike. */
export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}
