import type { Acquired, PooledContainer } from "../kit.js";

// What a pool skeleton keeps per runtime (RuntimeState), and the numbers it reports.

/** Delay before the background filler retries after failed creates: 250 ms, doubling, at most 30 s. */
export function poolRetryDelayMs(failures: number): number {
  return failures <= 0 ? 0 : Math.min(30_000, 250 * 2 ** (failures - 1));
}

/** What a pool holds for one runtime, as numbers. */
export interface PoolRuntimeCounts {
  /** Containers ready to hand out (fresh, or wiped). */
  ready: number;
  /** Wipes in flight (their container ends up handed to a waiter, ready, or destroyed). */
  wiping: number;
  /** Creates in flight. */
  creating: number;
  /** Acquisitions waiting for a container. */
  waiters: number;
}

/** What the skeleton holds, across runtimes. */
export interface PoolSkeletonCounts {
  runtimes: Record<string, PoolRuntimeCounts>;
  /** Containers handed out and not yet released. */
  inUse: number;
  /** Every container the pool holds a reference to (ready, being wiped or checked, in use). */
  held: number;
  /** Containers handed out so far. */
  handedOut: number;
}

export interface Waiter {
  /**
   * Set once the waiter is not covered by a wipe (no released container is being wiped for it):
   * it waits for a create. Whether a created container then counts as its cold start is the
   * policy's call (coldStartOf).
   */
  needsCreate: boolean;
  resolve(acquired: Acquired): void;
  reject(error: unknown): void;
}

export interface FillWatcher {
  resolve(): void;
  reject(error: unknown): void;
}

/** One runtime's ready containers, waiters and work in flight. */
export class RuntimeState {
  readonly ready: PooledContainer[] = [];
  readonly waiters: Waiter[] = [];
  readonly fillWatchers: FillWatcher[] = [];
  wiping = 0;
  creating = 0;
  /** Consecutive failed creates, for the background filler's back-off. */
  failures = 0;
  retryAt = 0;
  retryTimer: NodeJS.Timeout | undefined;
}
