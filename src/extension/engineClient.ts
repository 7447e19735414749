/**
 * The extension's only line to the engine: a child process (dist/engineWorker.js)
 * spoken to in the messages of src/engine/host/protocol.ts.
 *
 * Why a process and not a worker thread: onnxruntime-node loads in both, but
 * a native crash or an out-of-memory in a worker thread takes the whole
 * extension host down with it (every extension the user has), while a child
 * process just exits and is started again. It also keeps a model's memory
 * and onnxruntime's threads out of the extension host's heap and accounting.
 * The price is copying results between processes, which the protocol keeps
 * small (per-token typed arrays, no [tokens, d_sae] tensors).
 *
 * Every reply is checked against the protocol before it is believed. Each
 * request settles exactly once: with its result, with the engine's error,
 * as cancelled, or with an error when the process exits. Free of `vscode`, so
 * the tests drive it against the real engine process.
 */
import { ChildProcess, fork } from 'node:child_process';
import {
  EngineMethod,
  EngineParams,
  EngineResult,
  HostToEngine,
  engineMethods,
  engineToHost,
} from '../engine/host/protocol';

export interface CancelToken {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): { dispose(): void };
}

export interface RequestOptions {
  readonly token?: CancelToken;
  readonly onProgress?: (message: string, fraction: number | null) => void;
}

export interface EngineLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export class EngineError extends Error {
  constructor(
    message: string,
    /** The request was cancelled (by the caller, or by a newer load). */
    readonly cancelled = false,
    /** The engine no longer holds the document version the request named. */
    readonly stale = false,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

interface Pending {
  readonly method: EngineMethod;
  readonly resolve: (result: unknown) => void;
  readonly reject: (err: EngineError) => void;
  readonly onProgress?: RequestOptions['onProgress'];
  readonly cancelListener?: { dispose(): void };
}

export interface EngineClientOptions {
  /** The bundled worker (or, in tests, the TypeScript entry with a loader in execArgv). */
  readonly workerFile: string;
  readonly execArgv?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly log: EngineLog;
  /** Called when the process exits on its own (not through dispose). */
  readonly onExit?: (reason: string) => void;
}

export class EngineClient {
  private child: ChildProcess | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private disposed = false;

  constructor(private readonly options: EngineClientOptions) {}

  /** The process id while it runs, for logs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  request<M extends EngineMethod>(
    method: M,
    params: EngineParams<M>,
    options: RequestOptions = {},
  ): Promise<EngineResult<M>> {
    if (this.disposed) return Promise.reject(new EngineError('the engine has been shut down'));
    if (options.token?.isCancellationRequested) return Promise.reject(new EngineError('cancelled', true));
    const child = this.process();
    const id = this.nextId++;
    return new Promise<EngineResult<M>>((resolve, reject) => {
      const cancelListener = options.token?.onCancellationRequested(() => this.send({ type: 'cancel', id }));
      this.pending.set(id, {
        method,
        resolve: resolve as (r: unknown) => void,
        reject,
        onProgress: options.onProgress,
        cancelListener,
      });
      if (!this.send({ type: 'request', id, method, params }, child)) {
        this.settle(id, new EngineError('the engine process is not running'));
      }
    });
  }

  /** Lets the engine drop a closed document's analysis. */
  forget(document: string): void {
    if (this.child) this.send({ type: 'forget', document });
  }

  dispose(): void {
    this.disposed = true;
    const child = this.child;
    this.child = null;
    this.failAll('the engine has been shut down');
    if (child && child.exitCode === null) {
      child.disconnect?.();
      // It exits on disconnect; make sure of it if a native call holds it up.
      setTimeout(() => child.exitCode === null && child.kill('SIGKILL'), 2000).unref();
    }
  }

  private process(): ChildProcess {
    if (this.child) return this.child;
    const child = fork(this.options.workerFile, [], {
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      execArgv: [...(this.options.execArgv ?? [])],
      // Desktop VS Code runs extensions in Electron; this makes its binary act as Node for the child.
      env: { ...(this.options.env ?? process.env), ELECTRON_RUN_AS_NODE: '1' },
    });
    this.child = child;
    const log = this.options.log;
    const lines = (write: (s: string) => void) => (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) write(`engine: ${line}`);
    };
    child.stdout?.on(
      'data',
      lines((s) => log.info(s)),
    );
    child.stderr?.on(
      'data',
      lines((s) => log.warn(s)),
    );
    child.on('message', (raw: unknown) => this.receive(raw));
    child.on('error', (err) => log.error(`engine process: ${err.message}`));
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = null;
      const reason = signal ? `stopped by ${signal}` : `exited with code ${code}`;
      this.failAll(`the engine process ${reason}`);
      if (!this.disposed) this.options.onExit?.(reason);
    });
    return child;
  }

  private send(message: HostToEngine, child = this.child): boolean {
    if (!child?.connected) return false;
    child.send(message, (err) => {
      if (err) this.options.log.error(`could not send to the engine: ${err.message}`);
    });
    return true;
  }

  private receive(raw: unknown): void {
    let message;
    try {
      message = engineToHost.parse(raw);
    } catch (err) {
      this.options.log.error(`ignored a malformed message from the engine: ${(err as Error).message}`);
      return;
    }
    switch (message.type) {
      case 'log':
        this.options.log[message.level](`engine: ${message.message}`);
        return;
      case 'progress':
        this.pending.get(message.id)?.onProgress?.(message.message, message.fraction);
        return;
      case 'error':
        this.settle(message.id, new EngineError(message.message, message.cancelled, message.stale));
        return;
      case 'response': {
        const p = this.pending.get(message.id);
        if (!p) return; // settled already (the process was replaced)
        try {
          this.settle(message.id, null, engineMethods[p.method].result.parse(message.result, p.method));
        } catch (err) {
          this.settle(
            message.id,
            new EngineError(`the engine's reply is malformed: ${(err as Error).message}`),
          );
        }
      }
    }
  }

  private settle(id: number, error: EngineError | null, result?: unknown): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.cancelListener?.dispose();
    if (error) p.reject(error);
    else p.resolve(result);
  }

  private failAll(message: string): void {
    for (const id of [...this.pending.keys()]) this.settle(id, new EngineError(message));
  }
}
