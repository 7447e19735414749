/**
 * What the Feature Browser and the Cluster Map share on the host side: the
 * state of the loaded SAE's feature database (kept up to date as the engine
 * loads and as dashboards are built or rebuilt on disk). Their webview
 * plumbing is webviewPanelHost.ts, as for every panel.
 */
import * as vscode from 'vscode';
import { DatabaseState } from '../webview/featureProtocol';
import { EngineError } from './engineClient';
import { EngineState } from './engineState';

/** Dashboards are written as a folder swapped in by rename; wait for the dust to settle. */
const REFRESH_DEBOUNCE_MS = 400;

export class FeatureDatabaseWatch implements vscode.Disposable {
  private current: DatabaseState = { kind: 'loading', message: 'Starting the engine' };
  private refreshes = 0;
  private watcher: { dir: string; watcher: vscode.FileSystemWatcher } | null = null;
  private timer: NodeJS.Timeout | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];
  private readonly changed = new vscode.EventEmitter<DatabaseState>();
  /** The state changed: another database (or none) is behind the panels now. */
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly engine: EngineState,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.subscriptions.push(engine.onDidChange(() => void this.refresh()));
    void this.refresh();
  }

  get state(): DatabaseState {
    return this.current;
  }

  /** Asks the engine again what database the loaded SAE has. */
  async refresh(): Promise<void> {
    const seq = ++this.refreshes;
    const s = this.engine.status;
    let next: DatabaseState;
    if (s.kind === 'loading') {
      next = { kind: 'loading', message: s.message };
    } else if (s.kind === 'failed') {
      next = { kind: 'missing', message: `No model is loaded: ${s.message}`, build: false };
    } else if (!s.sae) {
      next = { kind: 'missing', message: s.saeProblem ?? 'No SAE is loaded.', build: false };
    } else {
      this.watch(s.sae.dir);
      try {
        next = { kind: 'ready', info: await this.engine.client.request('featureDatabase', {}) };
      } catch (err) {
        if (err instanceof EngineError && err.cancelled) return; // a newer load is on its way
        const message = sentence((err as Error).message);
        next = /no feature database/.test(message)
          ? { kind: 'missing', message, build: true }
          : { kind: 'failed', message };
        if (next.kind === 'failed') this.log.error(`feature database: ${message}`);
      }
    }
    if (seq !== this.refreshes || JSON.stringify(next) === JSON.stringify(this.current)) return;
    this.current = next;
    this.changed.fire(next);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.watcher?.watcher.dispose();
    for (const d of this.subscriptions) d.dispose();
    this.changed.dispose();
  }

  /** Watches the SAE folder for a database being built, rebuilt or removed (by Loupe's own job or the CLI). */
  private watch(saeDir: string): void {
    if (this.watcher?.dir === saeDir) return;
    this.watcher?.watcher.dispose();
    const pattern = new vscode.RelativePattern(vscode.Uri.file(saeDir), '{index.json,features/index.json}');
    const watcher = vscode.workspace.createFileSystemWatcher(pattern);
    const later = () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.refresh(), REFRESH_DEBOUNCE_MS);
    };
    watcher.onDidCreate(later);
    watcher.onDidChange(later);
    watcher.onDidDelete(later);
    this.watcher = { dir: saeDir, watcher };
  }
}

/** The engine's one-line errors start in lower case; the panels show them as sentences. */
function sentence(message: string): string {
  return message.charAt(0).toUpperCase() + message.slice(1);
}
