/**
 * The lens views' one setting, `loupe.tunedLensPath` (package.json declares
 * it): the tuned lens folder the Lens Grid's tuned lens reads; empty for none.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';

const KEY = 'tunedLensPath';

/** The tuned lens folder, resolved as the other path settings are (`~`, workspace-relative); null for none. */
export function tunedLensPath(): string | null {
  const raw = vscode.workspace.getConfiguration('loupe').get<string>(KEY, '').trim();
  if (!raw) return null;
  const expanded = raw === '~' || raw.startsWith('~/') ? path.join(os.homedir(), raw.slice(1)) : raw;
  if (path.isAbsolute(expanded)) return expanded;
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  return folder ? path.join(folder, expanded) : path.resolve(expanded);
}

export function affectsTunedLens(e: vscode.ConfigurationChangeEvent): boolean {
  return e.affectsConfiguration(`loupe.${KEY}`);
}

/** Sets the tuned lens where the setting is already set (a workspace value would hide a user one), else for the user. */
export async function setTunedLensPath(dir: string): Promise<void> {
  const c = vscode.workspace.getConfiguration('loupe');
  const info = c.inspect<string>(KEY);
  const target =
    info?.workspaceFolderValue !== undefined
      ? vscode.ConfigurationTarget.WorkspaceFolder
      : info?.workspaceValue !== undefined
        ? vscode.ConfigurationTarget.Workspace
        : vscode.ConfigurationTarget.Global;
  await c.update(KEY, dir, target);
}
