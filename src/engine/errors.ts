/**
 * The one error type the engine throws for bad input. Its message is a single
 * line that names the file (when there is one) and says what was wrong and,
 * where it helps, what to do; the CLI prints it as is and the extension shows it.
 */
export class LoupeError extends Error {
  constructor(message: string) {
    super(message.replace(/\s*\n\s*/g, ' '));
    this.name = 'LoupeError';
  }
}

/** An error raised because the caller cancelled the work; the message says what was kept, when anything was. */
export class CancelledError extends Error {
  constructor(message = 'cancelled') {
    super(message);
    this.name = 'CancelledError';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
