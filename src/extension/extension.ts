/**
 * The VS Code side of Loupe. The engine runs in a separate Node process (the
 * `loupe` CLI), so model work never blocks the extension host.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import * as vscode from 'vscode';

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Loupe', { log: true });
  context.subscriptions.push(log);
  const cli = path.join(context.extensionPath, 'dist', 'cli.js');

  context.subscriptions.push(
    vscode.commands.registerCommand('loupe.showHooks', async () => {
      const modelPath = vscode.workspace.getConfiguration('loupe').get<string>('modelPath') ?? '';
      const args = [cli, 'hooks', '--json', ...(modelPath ? ['--model', modelPath] : [])];
      await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Notification,
          title: 'Loupe: reading the model',
          cancellable: true,
        },
        (_progress, token) =>
          new Promise<void>((resolve) => {
            const child = execFile(
              process.execPath,
              args,
              { maxBuffer: 64 * 1024 * 1024 },
              (err, stdout, stderr) => {
                if (err) {
                  const msg = stderr.trim() || err.message;
                  log.error(msg);
                  if (!token.isCancellationRequested) void vscode.window.showErrorMessage(msg);
                } else {
                  const hooks = JSON.parse(stdout) as { name: string; shape: (number | string)[] }[];
                  log.info(`${hooks.length} hook points`);
                  for (const h of hooks) log.info(`${h.name} [${h.shape.join(', ')}]`);
                  log.show(true);
                }
                resolve();
              },
            );
            token.onCancellationRequested(() => child.kill());
          }),
      );
    }),
  );
}

export function deactivate(): void {}
