/**
 * The one way the `loupe` process ends. Output is complete whether stdout is
 * a file, a pipe or a terminal: the process waits for stdout and stderr to
 * drain before it exits (on a pipe, writes are asynchronous, and exiting with
 * data pending cuts it off). A reader that goes away (`loupe ... | head`)
 * ends the run quietly. Every failure becomes exactly one line on stderr and
 * an exit code: 1 for errors, 130 for Ctrl-C (143 for SIGTERM). A failure
 * Loupe did not foresee says so in one line; LOUPE_DEBUG=1 adds its stack.
 */
import { CancelledError, LoupeError } from '../engine/errors';
import { describeErrno } from '../engine/inputFiles';

const EXIT_ERROR = 1;
const EXIT_INTERRUPTED = 130;
const EXIT_TERMINATED = 143;

let ending = false;

/** Resolves once everything written to the stream so far has been handed to the system. */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) resolve();
    // Writes complete in order, so this one's callback comes after all earlier ones.
    else stream.write('', () => resolve());
  });
}

/** Writes `line` (if any) to stderr, waits for the output to drain, then exits. */
async function end(code: number, line?: string, detail?: string): Promise<void> {
  if (ending) return;
  ending = true;
  if (line !== undefined) process.stderr.write(`loupe: ${line}\n`);
  if (detail !== undefined) process.stderr.write(`${detail}\n`);
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(code);
}

/** What failed, as the one line the user reads, and the exit code. */
export function failureLine(err: unknown): { readonly line: string; readonly code: number } {
  if (err instanceof LoupeError) return { line: err.message, code: EXIT_ERROR };
  if (err instanceof CancelledError) return { line: 'cancelled', code: EXIT_INTERRUPTED };
  const e = err as Partial<NodeJS.ErrnoException>;
  if (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) {
    const what = describeErrno(e as NodeJS.ErrnoException);
    const where = typeof e.path === 'string' ? e.path : `cannot ${e.syscall ?? 'do it'}`;
    return { line: `${where}: ${what}`, code: EXIT_ERROR };
  }
  const message = firstLine(err instanceof Error ? err.message : String(err));
  if (
    err instanceof RangeError &&
    /allocation failed|invalid (typed )?array length|invalid string length|out of memory/i.test(message)
  ) {
    return {
      line: `not enough memory for this work (${message}); ask for less: fewer tokens, a smaller batch or dictionary`,
      code: EXIT_ERROR,
    };
  }
  const name = err instanceof Error ? err.name : typeof err;
  return {
    line: `Loupe failed unexpectedly (${name}: ${message}); please report it with the command, and LOUPE_DEBUG=1 for where it happened`,
    code: EXIT_ERROR,
  };
}

function firstLine(message: string): string {
  const line = message.split('\n')[0].trim();
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

function fail(err: unknown): void {
  const { line, code } = failureLine(err);
  const foreseen = err instanceof LoupeError || err instanceof CancelledError;
  const debug = process.env.LOUPE_DEBUG === '1' && !foreseen && err instanceof Error ? err.stack : undefined;
  void end(code, line, debug);
}

/**
 * Runs the command line and ends the process through `end`. A command that
 * listens for Ctrl-C itself (to stop at a checkpoint) gets the first one; a
 * second, or one with no listener, ends the run at once.
 */
export function runAndExit(main: () => Promise<void>): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE')
      void end(0); // the reader has all it wanted
    else fail(err);
  });
  process.stderr.on('error', () => undefined); // nowhere left to say anything
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  const interrupts = new Map<NodeJS.Signals, number>();
  for (const [signal, code] of [
    ['SIGINT', EXIT_INTERRUPTED],
    ['SIGTERM', EXIT_TERMINATED],
  ] as const) {
    process.on(signal, () => {
      const seen = (interrupts.get(signal) ?? 0) + 1;
      interrupts.set(signal, seen);
      if (seen === 1 && process.listenerCount(signal) > 1) return; // the command stops itself
      void end(code, signal === 'SIGINT' ? 'interrupted (Ctrl-C)' : 'terminated (SIGTERM)');
    });
  }
  main().then(() => end(0), fail);
}
