// Small helpers: timing, percentiles, the time budget.
import { setTimeout as sleepMs } from "node:timers/promises";

export const now = () => performance.now();
export const sleep = (ms) => sleepMs(ms);

/** Nearest-rank percentile of sorted values (p in 0..100). */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

const round = (x) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : null);

/** n, min, p50, p95, p99, max, mean of a list of milliseconds (p99 of fewer than 100 samples is the max: flagged). */
export function summarize(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  const mean = n ? sorted.reduce((a, b) => a + b, 0) / n : NaN;
  return {
    n,
    min: round(sorted[0]),
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[n - 1]),
    mean: round(mean),
  };
}

export function ratio(a, b) {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? Math.round((a / b) * 100) / 100 : null;
}

export function fmtMs(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return "—";
  if (x >= 10_000) return `${(x / 1000).toFixed(1)}s`;
  if (x >= 100) return x.toFixed(0);
  return x.toFixed(1);
}

export function fmtX(x) {
  return x === null || x === undefined || !Number.isFinite(x) ? "—" : `${x.toFixed(2)}×`;
}

export function fmtBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(0)} KiB`;
  return `${n} B`;
}

/**
 * The run's hard time budget. Each section asks for its share of what is left; unused time flows
 * to later sections. A loop asks `more(done, wanted)`: it stops at its deadline and says so.
 */
export class Budget {
  constructor(seconds, reserveSeconds) {
    this.start = Date.now();
    this.deadline = this.start + seconds * 1000;
    this.reserve = reserveSeconds * 1000;
  }

  remainingMs() {
    return this.deadline - this.reserve - Date.now();
  }

  /** A deadline for a part worth `weight` of the `remainingWeight` still to run. */
  slice(weight, remainingWeight) {
    const left = Math.max(0, this.remainingMs());
    return Date.now() + (left * weight) / Math.max(weight, remainingWeight);
  }

  expired() {
    return this.remainingMs() <= 0;
  }
}

/** Set by the run's hard stop: every loop ends, no new engine or container starts. */
export const hardStop = { stopped: false };

export function assertNotStopped(what) {
  if (hardStop.stopped) throw new Error(`the hard stop ended the run before ${what}`);
}

/** A loop guard: keeps going until `wanted` are done or the deadline passes (after at least `min`). */
export function loopGuard(deadline, wanted, min = 1) {
  const guard = {
    truncated: false,
    more(done) {
      if (hardStop.stopped) {
        guard.truncated = true;
        return false;
      }
      if (done >= wanted) return false;
      if (done >= min && Date.now() >= deadline) {
        guard.truncated = true;
        return false;
      }
      return true;
    },
  };
  return guard;
}

/** Runs `fn` with the list rotated by i: interleaves A/B/C measurements so drifting load hits each alike. */
export function rotate(list, i) {
  const k = i % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

export function log(...parts) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${parts.join(" ")}\n`);
}
