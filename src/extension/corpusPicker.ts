/**
 * The corpus quick pick that the commands which read a corpus share (Train
 * SAE, Feature Dashboards, Train Tuned Lens): a workspace folder, or a
 * folder / .jsonl / text file chosen in a dialog.
 */
import * as vscode from 'vscode';

/**
 * The chosen corpus's path, or undefined when cancelled. `placeHolder` says
 * what the text is for; `workspaceFirst` skips the pick when the one
 * workspace folder is the only choice besides the dialog.
 */
export async function pickCorpus(
  title: string,
  placeHolder: string,
  workspaceFirst = false,
): Promise<string | undefined> {
  type CorpusItem = vscode.QuickPickItem & { dir: string | null };
  const items: CorpusItem[] = [
    ...(vscode.workspace.workspaceFolders ?? [])
      .filter((f) => f.uri.scheme === 'file')
      .map((f) => ({
        label: `$(root-folder) ${f.name}`,
        description: 'the workspace folder',
        detail: f.uri.fsPath,
        dir: f.uri.fsPath,
      })),
    { label: '$(folder-opened) Choose a Folder, .jsonl or Text File…', dir: null },
  ];
  // ignoreFocusOut: it is one step of a multi-step command, which a click elsewhere must not cancel.
  const chosen =
    workspaceFirst && items.length === 2
      ? items[0]
      : await vscode.window.showQuickPick(items, {
          title,
          placeHolder,
          ignoreFocusOut: true,
          matchOnDescription: true,
        });
  if (!chosen) return undefined;
  if (chosen.dir) return chosen.dir;
  const picked = await vscode.window.showOpenDialog({
    canSelectFiles: true,
    canSelectFolders: true,
    canSelectMany: false,
    openLabel: 'Use as Corpus',
    title: 'A folder of text files, a .jsonl with a "text" field per line, or a text file',
  });
  return picked?.[0]?.fsPath;
}
