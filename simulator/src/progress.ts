/**
 * The live progress line of `latchkey simulate` on a terminal: connected devices, telemetry
 * rate, commands and refusals, redrawn in place at most `maxPerSecond` times a second.
 * Nothing is drawn unless enabled (a TTY and no `--json`).
 */

/** The telemetry rate shown is averaged over about this long. */
const RATE_WINDOW_MS = 2_000;

/** A snapshot of the counters the progress line shows. */
export interface ProgressSnapshot {
  phase: string;
  connected: number;
  total: number;
  telemetryReceived: number;
  commandsSent: number;
  commandsOk: number;
  /** Token refreshes of the fleet's clients so far (each a reconnect with a fresh token). */
  tokenRefreshes: number;
  rogueRefused: number;
  rogueAttempted: number;
}

export interface ProgressOptions {
  /** Where to draw (the terminal). */
  write: (text: string) => void;
  /** Epoch ms. */
  clock: () => number;
  /** Draw only when true (stdout is a TTY and `--json` is off). */
  enabled: boolean;
  /** Redraws per second at most. Default 4. */
  maxPerSecond?: number;
}

/** A throttled, in-place progress line. */
export interface Progress {
  /** Offers a new snapshot; drawn only when enabled and the last draw is old enough. */
  update(s: ProgressSnapshot): void;
  /** Clears the line (call before printing the summary). */
  finish(): void;
  /** How many times the line was drawn (for tests). */
  readonly draws: number;
}

/**
 * Creates the progress display.
 *
 * @example
 * ```ts
 * const progress = createProgress({ write: (t) => process.stdout.write(t), clock: Date.now, enabled: process.stdout.isTTY === true });
 * progress.update({ phase: 'steady', connected: 40, total: 40, telemetryReceived: 812, commandsSent: 9, commandsOk: 9, tokenRefreshes: 80, rogueRefused: 3, rogueAttempted: 3 });
 * ```
 */
export function createProgress(o: ProgressOptions): Progress {
  if (typeof o.write !== 'function' || typeof o.clock !== 'function') throw new TypeError('createProgress: write and clock are required');
  const minGapMs = 1000 / (o.maxPerSecond ?? 4);
  let lastDrawAt = -Infinity;
  /** (time, received) samples of the last RATE_WINDOW_MS: the rate is averaged over them. */
  const samples: { at: number; received: number }[] = [];
  let drawn = false;
  let draws = 0;
  return {
    update(s) {
      if (!o.enabled) return;
      const now = o.clock();
      if (now - lastDrawAt < minGapMs) return;
      lastDrawAt = now;
      samples.push({ at: now, received: s.telemetryReceived });
      while (samples.length > 2 && now - samples[1]!.at >= RATE_WINDOW_MS) samples.shift();
      const first = samples[0]!;
      const rate = now > first.at ? ((s.telemetryReceived - first.received) * 1000) / (now - first.at) : 0;
      const line =
        `${s.phase.padEnd(9)} connected ${s.connected}/${s.total}  ` +
        `telemetry ${s.telemetryReceived} (${Math.round(rate)} msg/s)  ` +
        `commands ${s.commandsOk}/${s.commandsSent}  token refreshes ${s.tokenRefreshes}  rogue refused ${s.rogueRefused}/${s.rogueAttempted}`;
      o.write(`\r\x1b[2K${line}`);
      drawn = true;
      draws++;
    },
    finish() {
      if (drawn) o.write('\r\x1b[2K');
      drawn = false;
    },
    get draws() {
      return draws;
    },
  };
}
