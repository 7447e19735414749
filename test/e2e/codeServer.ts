/**
 * Starting and stopping code-server (VS Code's workbench in a browser, with a
 * Node extension host) for the end-to-end tests. `scripts/vscode-setup.sh`
 * installs it into .cache/code-server/.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const CODE_SERVER_ENTRY = path.join(
  ROOT,
  '.cache',
  'code-server',
  'node_modules',
  'code-server',
  'out',
  'node',
  'entry.js',
);
export const VSIX = path.join(ROOT, '.cache', 'vsix', 'loupe.vsix');

/** Builds dist/ and packs it into .cache/vsix/loupe.vsix (see .vscodeignore for what goes in). */
export function packageExtension(): string {
  run('npm', ['run', '--silent', 'package:vsix']);
  return VSIX;
}

/** Installs a .vsix the way a user would; a folder merely copied into the extensions dir is ignored. */
export function installExtension(vsix: string, userDataDir: string, extensionsDir: string): void {
  run(process.execPath, [
    CODE_SERVER_ENTRY,
    '--user-data-dir',
    userDataDir,
    '--extensions-dir',
    extensionsDir,
    '--install-extension',
    vsix,
    '--force',
  ]);
}

function run(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { cwd: ROOT, stdio: 'pipe', encoding: 'utf8' });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, {
      cause: err,
    });
  }
}

/** A free TCP port on the loopback interface: `preferred` if it is free, else one the OS picks. */
export async function freePort(preferred = 0): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => {
        const { port: got } = srv.address() as net.AddressInfo;
        srv.close(() => resolve(got));
      });
    });
  if (preferred > 0) {
    try {
      return await tryPort(preferred);
    } catch {
      // taken: fall through to any free port
    }
  }
  return tryPort(0);
}

export interface CodeServerOptions {
  readonly folder: string;
  readonly userDataDir: string;
  readonly extensionsDir: string;
  readonly port: number;
  readonly env?: NodeJS.ProcessEnv;
  /** Where code-server's stdout and stderr go. */
  readonly logFile: string;
}

export class CodeServer {
  private exited = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    readonly folder: string,
  ) {
    child.once('exit', () => (this.exited = true));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/?folder=${encodeURIComponent(this.folder)}`;
  }

  /** Starts code-server in its own process group and waits until it answers HTTP. */
  static async start(o: CodeServerOptions): Promise<CodeServer> {
    if (!fs.existsSync(CODE_SERVER_ENTRY)) {
      throw new Error('code-server is not installed; run scripts/vscode-setup.sh');
    }
    const log = fs.openSync(o.logFile, 'a');
    const child = spawn(
      process.execPath,
      [
        CODE_SERVER_ENTRY,
        '--auth',
        'none',
        '--bind-addr',
        `127.0.0.1:${o.port}`,
        '--disable-telemetry',
        '--disable-update-check',
        '--disable-workspace-trust',
        '--disable-getting-started-override',
        '--user-data-dir',
        o.userDataDir,
        '--extensions-dir',
        o.extensionsDir,
        o.folder,
      ],
      { cwd: ROOT, env: { ...process.env, ...o.env }, stdio: ['ignore', log, log], detached: true },
    );
    fs.closeSync(log);
    const server = new CodeServer(child, o.port, o.folder);
    live.add(server);
    const deadline = Date.now() + 60_000;
    while (!(await server.healthy())) {
      if (server.exited) throw new Error(`code-server exited at start; see ${o.logFile}`);
      if (Date.now() > deadline) {
        await server.stop();
        throw new Error(`code-server did not answer on port ${o.port} within 60 s; see ${o.logFile}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    return server;
  }

  private healthy(): Promise<boolean> {
    return new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: this.port, path: '/healthz', timeout: 2000 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => {
        req.destroy();
        resolve(false);
      });
    });
  }

  /** Ends code-server and everything it started (extension host, the loupe CLI): the whole process group. */
  async stop(): Promise<void> {
    live.delete(this);
    if (this.exited || this.child.pid === undefined) return;
    const group = -this.child.pid;
    signal(group, 'SIGTERM');
    const deadline = Date.now() + 5000;
    while (!this.exited && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    signal(group, 'SIGKILL'); // the extension host may outlive its parent; leave nothing behind
  }

  /** For exit handlers, where nothing asynchronous can run. */
  killNow(): void {
    if (this.child.pid !== undefined) signal(-this.child.pid, 'SIGKILL');
  }
}

const live = new Set<CodeServer>();
process.once('exit', () => {
  for (const s of live) s.killNow();
});

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
