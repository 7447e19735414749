/**
 * The jobs engine: a second engine process (the same dist/engineWorker.js)
 * for work that takes minutes — training an SAE, building feature
 * dashboards, exporting activations — so the engine that analyses the open
 * file never queues behind it. It starts with the first job and exits after
 * a while without one, giving its memory back.
 *
 * `runJob` shows a job as a progress notification with a Cancel button and
 * logs it; what a finished, cancelled or failed job leaves behind is the
 * engine's business (see src/engine/host/jobs.ts).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { EngineMethod, EngineParams, EngineResult } from '../engine/host/protocol';
import { EngineClient, EngineError } from './engineClient';

/** The jobs engine exits this long after its last job. */
const IDLE_EXIT_MS = 120_000;
/** Progress lines logged per job, at most (one per tenth of the way). */
const LOG_STEPS = 10;

export class JobsEngine implements vscode.Disposable {
  private client: EngineClient | null = null;
  private running = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Output paths of the jobs running now: two jobs never write the same place. */
  private readonly busy = new Set<string>();

  constructor(
    private readonly extensionPath: string,
    readonly log: vscode.LogOutputChannel,
  ) {}

  isBusy(out: string): boolean {
    return this.busy.has(path.resolve(out));
  }

  async request<M extends EngineMethod>(
    method: M,
    params: EngineParams<M>,
    out: string,
    options: {
      token?: vscode.CancellationToken;
      onProgress?: (message: string, fraction: number | null) => void;
    },
  ): Promise<EngineResult<M>> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.running++;
    this.busy.add(path.resolve(out));
    try {
      return await this.engine().request(method, params, options);
    } finally {
      this.busy.delete(path.resolve(out));
      if (--this.running === 0) {
        this.idleTimer = setTimeout(() => this.stop(), IDLE_EXIT_MS);
      }
    }
  }

  dispose(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.stop();
  }

  private engine(): EngineClient {
    this.client ??= new EngineClient({
      workerFile: path.join(this.extensionPath, 'dist', 'engineWorker.js'),
      log: {
        info: (m) => this.log.info(`jobs ${m}`),
        warn: (m) => this.log.warn(`jobs ${m}`),
        error: (m) => this.log.error(`jobs ${m}`),
      },
      onExit: (reason) => {
        this.log.error(`the jobs engine process ${reason}`);
        this.client = null;
      },
    });
    return this.client;
  }

  private stop(): void {
    this.client?.dispose();
    this.client = null;
  }
}

export type JobOutcome<M extends EngineMethod> =
  | { readonly kind: 'done'; readonly result: EngineResult<M> }
  | { readonly kind: 'cancelled'; readonly lastMessage: string | null }
  | { readonly kind: 'failed'; readonly message: string };

/** Runs a job under a cancellable progress notification titled `title`; never throws. */
export async function runJob<M extends EngineMethod>(
  jobs: JobsEngine,
  title: string,
  method: M,
  params: EngineParams<M>,
  out: string,
): Promise<JobOutcome<M>> {
  const log = jobs.log;
  log.info(`${title}: started`);
  let lastMessage: string | null = null;
  const t0 = performance.now();
  try {
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Loupe: ${title}`, cancellable: true },
      (progress, token) => {
        let shown = 0;
        let logged = 0;
        return jobs.request(method, params, out, {
          token,
          onProgress: (message, fraction) => {
            lastMessage = message;
            // The notification's bar moves by increments; never backwards.
            const increment = fraction === null ? 0 : Math.max(0, 100 * fraction - shown);
            shown += increment;
            progress.report({ message, increment });
            if (fraction !== null && fraction * LOG_STEPS >= logged + 1) {
              logged = Math.floor(fraction * LOG_STEPS);
              log.info(`${title}: ${message}`);
            }
          },
        });
      },
    );
    log.info(`${title}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return { kind: 'done', result };
  } catch (err) {
    if (err instanceof EngineError && err.cancelled) {
      log.info(`${title}: cancelled${lastMessage ? ` at ${lastMessage}` : ''}`);
      return { kind: 'cancelled', lastMessage };
    }
    const message = (err as Error).message;
    log.error(`${title}: ${message}`);
    return { kind: 'failed', message };
  }
}
