/**
 * Watches the extension host's event loop, the thread every extension and
 * every editor event share: a timer that should fire every TICK_MS measures
 * how late it fires. Lateness has two causes, code running on the thread and
 * a machine too busy to schedule the process at all; the CPU time the
 * process used meanwhile tells them apart, so each late tick is logged with
 * both (a block is the CPU-busy part). Any block over BLOCK_MS is a warning;
 * a summary (the longest block, and Loupe's own longest synchronous step)
 * follows once a minute.
 *
 * The timer runs only while Loupe is at work (from any `measure` or `wake`
 * until IDLE_MS later), so an idle editor pays nothing for it; the summary
 * covers the minute's working time.
 */
import * as vscode from 'vscode';

const TICK_MS = 20;
const BLOCK_MS = 50;
const IDLE_MS = 10_000;
const REPORT_MS = 60_000;

export class LagProbe implements vscode.Disposable {
  private timer: NodeJS.Timeout | null = null;
  private last = 0;
  private lastCpu = process.cpuUsage();
  private lastWake = 0;
  private lastReport = performance.now();
  private maxLag = 0;
  private maxOwn = { ms: 0, what: '' };
  /** Open `track` calls: the longest block each has seen so far. */
  private readonly trackers = new Set<{ max: number }>();

  constructor(private readonly log: vscode.LogOutputChannel) {}

  /** Starts (or keeps) watching: Loupe is about to do something. */
  wake(): void {
    this.lastWake = performance.now();
    if (this.timer) return;
    this.last = this.lastWake;
    this.lastCpu = process.cpuUsage();
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  /** Starts watching; `stop` returns the longest block (ms) of the event loop since, for one piece of work's log line. */
  track(): { stop(): number } {
    this.wake();
    const tracker = { max: 0 };
    this.trackers.add(tracker);
    return {
      stop: () => {
        this.trackers.delete(tracker);
        return tracker.max;
      },
    };
  }

  /** Runs a synchronous step of Loupe's and notes how long it held the thread. */
  measure<T>(what: string, fn: () => T): T {
    this.wake();
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      const ms = performance.now() - t0;
      if (ms > this.maxOwn.ms) this.maxOwn = { ms, what };
      if (ms > BLOCK_MS) this.log.warn(`event loop: ${what} held the extension host for ${ms.toFixed(0)} ms`);
    }
  }

  dispose(): void {
    this.stop();
  }

  private tick(): void {
    const now = performance.now();
    const cpu = process.cpuUsage(this.lastCpu);
    const lag = now - this.last - TICK_MS;
    // The CPU time the process used while the tick was late: the part of the lateness spent running code.
    const busy = Math.max(0, Math.min(lag, (cpu.user + cpu.system) / 1000));
    this.last = now;
    this.lastCpu = process.cpuUsage();
    if (busy > this.maxLag) this.maxLag = busy;
    for (const t of this.trackers) t.max = Math.max(t.max, busy);
    if (busy > BLOCK_MS) {
      this.log.warn(`event loop: the extension host was blocked for about ${busy.toFixed(0)} ms`);
    } else if (lag > BLOCK_MS) {
      this.log.trace(
        `event loop: a tick came ${lag.toFixed(0)} ms late, ${busy.toFixed(0)} ms of it busy: the machine was short of CPU`,
      );
    }
    if (now - this.lastReport > REPORT_MS) this.report();
    if (now - this.lastWake > IDLE_MS && this.trackers.size === 0) this.stop();
  }

  private stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = null;
  }

  private report(): void {
    this.log.info(
      `event loop: longest block ${this.maxLag.toFixed(0)} ms while Loupe was working (any extension's); ` +
        `Loupe's longest step ${this.maxOwn.ms.toFixed(1)} ms (${this.maxOwn.what || 'none'})`,
    );
    this.lastReport = performance.now();
    this.maxLag = 0;
    this.maxOwn = { ms: 0, what: '' };
  }
}
