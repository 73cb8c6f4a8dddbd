import type { BuildProgressEvent } from "@isol8/core";

/**
 * How `isol8 setup` and `isol8 build` show image builds: one stderr line per step, prefixed with
 * the seconds since the start (`elapsed`); build logs only with --verbose.
 */
export function buildProgress(verbose: boolean | undefined): { onProgress: (event: BuildProgressEvent) => void; elapsed: () => string } {
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s`;
  const onProgress = (event: BuildProgressEvent) => {
    if (event.kind === "log" && !verbose) return;
    process.stderr.write(`${elapsed()} [${event.target}] ${event.message}\n`);
  };
  return { onProgress, elapsed };
}
