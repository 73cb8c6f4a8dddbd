import type { SandboxDriver } from "@isol8/kit";

/**
 * The OOM kill counter of each container's memory cgroup as last seen (it starts at 0), so the
 * kills of one execution are the increase since the previous check. Docker's own OOMKilled flag
 * is not set when the victim is not the container's main process, hence the counter.
 */
export class OomCounters {
  readonly #seen = new Map<string, number>();

  constructor(private readonly driver: SandboxDriver) {}

  /** Records the counter a run reported itself: the baseline of the next check. */
  set(containerId: string, counter: number): void {
    this.#seen.set(containerId, counter);
  }

  /**
   * Reads the counter (cgroup v1: memory.oom_control, v2: memory.events) with one exec as the
   * sandbox user `user`; the increase since the last check, 0 when it cannot be read (the
   * container is gone).
   */
  async readSinceLastCheck(containerId: string, user: string): Promise<number> {
    const chunks: Buffer[] = [];
    const read = await this.driver
      .exec(containerId, {
        argv: ["sh", "-c", "cat /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null || cat /sys/fs/cgroup/memory.events"],
        user,
        onOutput: (stream, chunk) => void (stream === "stdout" && chunks.push(chunk)),
      })
      .catch(() => undefined);
    const count = /^oom_kill (\d+)$/m.exec(Buffer.concat(chunks).toString())?.[1];
    if (!read || read.exitCode !== 0 || count === undefined) return 0;
    const before = this.#seen.get(containerId) ?? 0;
    this.#seen.set(containerId, Number(count));
    return Math.max(0, Number(count) - before);
  }

  forget(containerId: string): void {
    this.#seen.delete(containerId);
  }
}
