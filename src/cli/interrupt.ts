/**
 * Ctrl-C (SIGINT) or SIGTERM during a long command: the work is asked to stop
 * through an AbortSignal, whatever it had written stays whole (the engine
 * writes every result in one step, safeWrite.ts), and the command ends with
 * one line on stderr and exit code 130, as shells expect of an interrupted
 * program.
 */
import { CancelledError } from '../engine/errors';

/** 128 + SIGINT's number: what a shell reports for a program stopped by Ctrl-C. */
export const INTERRUPTED_EXIT_CODE = 130;

/** What a long command's work returns when it stopped early but cleanly (a checkpoint was kept). */
export interface Stopped {
  /** The one line to end with, for example "stopped at step 40; --resume continues". */
  readonly stopped: string;
}

/**
 * Runs a long command's work with SIGINT and SIGTERM turned into its
 * AbortSignal. A CancelledError it throws after a signal ends the command
 * with `cancelledLine`; a `Stopped` it returns ends it with its own line.
 */
export async function interruptible(
  cancelledLine: string,
  work: (signal: AbortSignal) => Promise<Stopped | void>,
): Promise<void> {
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let line: string | null = null;
  try {
    const result = await work(controller.signal);
    if (result) line = result.stopped;
  } catch (err) {
    if (!(err instanceof CancelledError && controller.signal.aborted)) throw err;
    line = cancelledLine;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (line !== null) {
    process.stderr.write(`loupe: ${line}\n`);
    process.exit(INTERRUPTED_EXIT_CODE);
  }
}
