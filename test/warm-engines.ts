import { afterAll, beforeAll, expect, test } from "vitest";
import { ExecutorLauncher, type ExecutionRequest, type ExecutionResult } from "@isol8/core";
import { DockerIsol8 } from "isol8";
import { isol8Containers } from "./helpers.js";

export interface WarmAndColdEngines {
  /** Pool of one, warm start on (the default). */
  warm: DockerIsol8;
  /** The same, with `warmStart: false`: what a fresh start gives. */
  cold: DockerIsol8;
  /** Persistent mode, warm start on. */
  persistent: DockerIsol8;
  /**
   * How each program run (not the pool's wipes) started, from the executor's exit report (its
   * "warm" flag: the prepared standby ran it). Tests empty it (`starts.length = 0`) before a case.
   */
  starts: ("warm" | "cold")[];
  /** One test per program: run on the warm engine (checked warm), then the cold one (checked cold), same result. */
  sameWarmAndCold(programs: Record<string, ExecutionRequest>): void;
}

/** What must be the same whether the runtime started warm or cold. */
export const observable = (r: ExecutionResult) => ({ stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode });

/**
 * The harness of the warm-start equivalence suites: a warm and a cold engine (and a persistent
 * one) forcing the executor, whatever ISOL8_LAUNCHER says (the warm start needs it), started in
 * beforeAll with the runtimes' pools filled, stopped in afterAll leaving no container. Every run
 * goes through the real launcher; a wrapper only records how it started. The engines have one
 * secret unless `secrets` says otherwise (`{}`: none).
 */
export function warmAndColdEngines(
  runtimes: string[],
  { secrets = { API_TOKEN: "tok-5f1e9a" } }: { secrets?: Record<string, string> } = {},
): WarmAndColdEngines {
  const common = { launcher: "executor" as const, timeoutMs: 20_000, poolSize: 1, secrets };
  const engines: WarmAndColdEngines = {
    warm: new DockerIsol8(common),
    cold: new DockerIsol8({ ...common, warmStart: false }),
    persistent: new DockerIsol8({ mode: "persistent", launcher: "executor", timeoutMs: 20_000 }),
    starts: [],
    sameWarmAndCold: (programs) => {
      for (const [name, request] of Object.entries(programs)) {
        test(name, async () => {
          engines.starts.length = 0;
          const a = await engines.warm.execute(request);
          expect(engines.starts, "the warm engine's run").toEqual(["warm"]);
          const b = await engines.cold.execute(request);
          expect(engines.starts, "then the cold engine's run").toEqual(["warm", "cold"]);
          expect(observable(a)).toEqual(observable(b));
        });
      }
    },
  };
  const realRun = ExecutorLauncher.prototype.run;
  beforeAll(async () => {
    ExecutorLauncher.prototype.run = async function (this: ExecutorLauncher, ...args: Parameters<typeof realRun>) {
      const outcome = await realRun.apply(this, args);
      if (args[1].argv.some((arg) => arg.startsWith("/sandbox/main."))) engines.starts.push(outcome.exit?.warm ? "warm" : "cold");
      return outcome;
    };
    await Promise.all([engines.warm.start({ prewarm: { runtimes } }), engines.cold.start({ prewarm: { runtimes } })]);
  });
  afterAll(async () => {
    ExecutorLauncher.prototype.run = realRun;
    const all = [engines.warm, engines.cold, engines.persistent];
    await Promise.all(all.map((engine) => engine.stop()));
    for (const engine of all) expect(await isol8Containers(engine.id)).toEqual([]);
  });
  return engines;
}
