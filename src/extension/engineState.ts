/**
 * What the engine has loaded, kept in step with the settings: starts the
 * engine process, loads the configured (or bundled) model and SAE, reloads
 * when the settings change, starts the process again if it dies, and tells
 * the UI what is loaded and what went wrong. Failures become notifications
 * and log lines, never exceptions in the extension host.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ModelInfo, SaeInfo } from '../engine/host/protocol';
import { LoupeConfig, NO_SAE, readConfig } from './config';
import { EngineClient, EngineError } from './engineClient';

export type EngineStatus =
  | { readonly kind: 'loading'; readonly message: string }
  | {
      readonly kind: 'ready';
      readonly model: ModelInfo;
      readonly sae: SaeInfo | null;
      /** Why there is no SAE, when there is none: it failed to load, or none is configured. */
      readonly saeProblem: string | null;
      /** Bumped on each load, so that analyses of an older load are told apart. */
      readonly generation: number;
    }
  | { readonly kind: 'failed'; readonly message: string };

/** Restarts allowed within RESTART_WINDOW_MS before Loupe stops trying and says so. */
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 60_000;
/** How long settings changes are gathered before one load. */
const SETTLE_MS = 150;

export class EngineState implements vscode.Disposable {
  readonly client: EngineClient;
  private current: EngineStatus = { kind: 'loading', message: 'Starting' };
  private generation = 0;
  private loadCancel: vscode.CancellationTokenSource | null = null;
  private readonly restarts: number[] = [];
  private loadTimer: NodeJS.Timeout | undefined;
  private settingsBatches = 0;
  private loadAfterBatch = false;
  private readonly changed = new vscode.EventEmitter<EngineStatus>();
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly extensionPath: string,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.client = new EngineClient({
      workerFile: path.join(extensionPath, 'dist', 'engineWorker.js'),
      log,
      onExit: (reason) => this.onEngineExit(reason),
    });
  }

  get status(): EngineStatus {
    return this.current;
  }

  /** The model and SAE that ship with Loupe, loaded when the settings name none. */
  get bundledModelDir(): string {
    return path.join(this.extensionPath, 'models', 'default');
  }

  get bundledSaeDir(): string {
    return path.join(this.extensionPath, 'models', 'default-sae');
  }

  /** The default model's transcoder set, listed in the Models & SAEs tree beside the bundled SAE. */
  get bundledTranscodersDir(): string {
    return path.join(this.extensionPath, 'models', 'default-transcoders');
  }

  /**
   * Loads what the settings name once they have settled, so that a command
   * that sets the model and then the SAE loads once, and never the new model
   * with the old SAE in between.
   */
  loadSoon(): void {
    if (this.settingsBatches > 0) {
      this.loadAfterBatch = true;
      return;
    }
    if (this.loadTimer) clearTimeout(this.loadTimer);
    this.loadTimer = setTimeout(() => {
      this.loadTimer = undefined;
      void this.load();
    }, SETTLE_MS);
  }

  /**
   * Runs settings updates (the model, then the SAE) as one change: the
   * settings events they raise load nothing until all are written, then once.
   */
  async batchSettings(update: () => Promise<void>): Promise<void> {
    this.settingsBatches++;
    try {
      await update();
    } finally {
      if (--this.settingsBatches === 0 && this.loadAfterBatch) {
        this.loadAfterBatch = false;
        this.loadSoon();
      }
    }
  }

  /** The next status that is not 'loading': what the load under way (or about to start) ends in. */
  settled(): Promise<EngineStatus> {
    return new Promise((resolve) => {
      const sub = this.onDidChange((s) => {
        if (s.kind !== 'loading' && !this.loadTimer) {
          sub.dispose();
          resolve(s);
        }
      });
    });
  }

  /** Loads what the settings name; a newer call cancels an older one still running. */
  async load(config: LoupeConfig = readConfig()): Promise<void> {
    this.loadCancel?.cancel();
    const cancel = new vscode.CancellationTokenSource();
    this.loadCancel = cancel;
    const modelDir = config.modelPath || this.bundledModelDir;
    const bundledSae = this.bundledSaeDir;
    const saeDir =
      config.saePath === null
        ? null
        : config.saePath || (fs.existsSync(path.join(bundledSae, 'cfg.json')) ? bundledSae : null);
    const name = path.basename(modelDir);
    this.set({ kind: 'loading', message: `Loading ${name}` });
    this.log.info(`loading model ${modelDir}${saeDir ? ` with SAE ${saeDir}` : ' (no SAE)'}`);
    const t0 = performance.now();
    try {
      const loaded = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: `Loupe: loading ${name}` },
        (progress) =>
          this.client.request(
            'load',
            { model: modelDir, sae: saeDir, threads: config.threads, cacheDir: null },
            {
              token: cancel.token,
              onProgress: (message) => {
                progress.report({ message });
                this.set({ kind: 'loading', message });
              },
            },
          ),
      );
      if (cancel.token.isCancellationRequested) return;
      this.log.info(
        `loaded ${loaded.model.name} (${loaded.model.modelType}, ${loaded.model.nLayers} layers, d_model ${loaded.model.dModel}, context ${loaded.model.nCtx})` +
          (loaded.sae
            ? ` and SAE ${loaded.sae.name} (${loaded.sae.architecture}, ${loaded.sae.dSae} features at ${loaded.sae.hook}, windows of ${loaded.sae.window} tokens${loaded.sae.hasFeatureDatabase ? ', with labels' : ''})`
            : '') +
          ` in ${Math.round(performance.now() - t0)} ms`,
      );
      for (const w of loaded.warnings) this.log.warn(w);
      let saeProblem: string | null = null;
      if (loaded.saeError) {
        saeProblem = loaded.saeError;
        this.log.error(`SAE not loaded: ${loaded.saeError}`);
        void this.notifyError(`Loupe could not use the SAE: ${loaded.saeError}`, 'sae');
      } else if (!loaded.sae) {
        saeProblem =
          config.saePath === null
            ? `No SAE is loaded (loupe.saePath is "${NO_SAE}"): train one for ${loaded.model.name} with "Loupe: Train SAE…", or choose one with "Loupe: Load SAE Folder…".`
            : 'No SAE is configured: choose one with "Loupe: Load SAE Folder…".';
      }
      this.set({
        kind: 'ready',
        model: loaded.model,
        sae: loaded.sae,
        saeProblem,
        generation: ++this.generation,
      });
    } catch (err) {
      if (cancel.token.isCancellationRequested || (err instanceof EngineError && err.cancelled)) return;
      const message = (err as Error).message;
      this.log.error(`model not loaded: ${message}`);
      this.set({ kind: 'failed', message });
      void this.notifyError(`Loupe could not load the model: ${message}`, 'model');
    } finally {
      if (this.loadCancel === cancel) this.loadCancel = null;
      cancel.dispose();
    }
  }

  dispose(): void {
    if (this.loadTimer) clearTimeout(this.loadTimer);
    this.loadCancel?.cancel();
    this.client.dispose();
    this.changed.dispose();
  }

  private set(status: EngineStatus): void {
    this.current = status;
    this.changed.fire(status);
  }

  private async notifyError(message: string, what: 'model' | 'sae'): Promise<void> {
    const choose = what === 'model' ? 'Choose Model Folder…' : 'Choose SAE Folder…';
    const pick = await vscode.window.showErrorMessage(message, choose, 'Show Log');
    if (pick === choose)
      await vscode.commands.executeCommand(what === 'model' ? 'loupe.loadModel' : 'loupe.loadSae');
    else if (pick === 'Show Log') this.log.show(true);
  }

  private onEngineExit(reason: string): void {
    const now = Date.now();
    while (this.restarts.length && now - this.restarts[0] > RESTART_WINDOW_MS) this.restarts.shift();
    this.log.error(`the engine process ${reason}`);
    if (this.restarts.length >= MAX_RESTARTS) {
      const message = `The Loupe engine stopped ${MAX_RESTARTS + 1} times within a minute (last: ${reason}); run "Loupe: Reload Model" to try again.`;
      this.set({ kind: 'failed', message });
      void vscode.window.showErrorMessage(message, 'Show Log').then((p) => p && this.log.show(true));
      return;
    }
    this.restarts.push(now);
    void this.load();
  }
}
