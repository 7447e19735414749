/**
 * What the training commands (train-sae, train-transcoder) share on the
 * terminal: the progress line, and Ctrl-C as "stop at the next step and write
 * a checkpoint".
 */
import { TrainProgress } from '../engine/sae/trainer';

export function progressLine(p: TrainProgress): string {
  const width = 24;
  const done = Math.round((p.step / p.steps) * width);
  const eta =
    p.etaSeconds < 90
      ? `${Math.round(p.etaSeconds)}s`
      : `${Math.floor(p.etaSeconds / 60)}m${String(Math.round(p.etaSeconds % 60)).padStart(2, '0')}s`;
  return (
    `[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${((100 * p.step) / p.steps).toFixed(0).padStart(3)}% ` +
    `step ${p.step}/${p.steps} | ${Math.round(p.activationsPerSecond)} act/s | loss ${p.loss.toFixed(3)} | ` +
    `FVU ${p.fvu.toFixed(3)} | L0 ${p.l0.toFixed(1)} | dead ${(100 * p.deadFraction).toFixed(1)}% | ETA ${eta}  `
  );
}

/** A live bar on a terminal; otherwise (logs, CI) one line per tenth of the run. */
export function reportProgress(p: TrainProgress): void {
  if (process.stderr.isTTY) process.stderr.write(`\r${progressLine(p)}`);
  else if (p.step === p.steps || p.step % Math.max(1, Math.round(p.steps / 10)) === 0) {
    process.stderr.write(`${progressLine(p)}\n`);
  }
}

/** Runs a training with Ctrl-C (and SIGTERM) turned into a stop at the next step, which writes a checkpoint. */
export async function withStopSignal<T>(train: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = (): void => {
    process.stderr.write('\nstopping at the next step; a checkpoint will be written\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await train(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
