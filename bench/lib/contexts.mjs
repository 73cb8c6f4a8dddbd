// Section: interpreter contexts. A cell `x += 1` in a live context against a warm ephemeral
// print(1) (fast pool, prewarmed), interleaved one for one so both see the same load: a cell
// needs no process start, only a round trip to the context's kernel.
import { PROGRAMS } from "./config.mjs";
import { startEngine, stopEngine } from "./latency.mjs";
import { timedExecute } from "./engines.mjs";
import { assertNotStopped, log, loopGuard, now, ratio, summarize } from "./util.mjs";

/** What each runtime's context runs: the state it starts with, and the cell timed. */
const CELLS = {
  python: { init: "x = 0", cell: "x += 1" },
  node: { init: "let x = 0", cell: "x += 1" },
};

async function contextsForRuntime(ctx, runtime, deadline) {
  const { config } = ctx;
  const wanted = config.quick ? 20 : config.runs;
  const ephemeral = await startEngine(ctx, { poolStrategy: "fast", poolSize: { clean: 1, dirty: 1 } });
  const notebook = await startEngine(ctx, { mode: "persistent", launcher: "executor" });
  try {
    await ephemeral.engine.start({ prewarm: { runtimes: [runtime] } });
    await notebook.engine.start();
    const { id } = await notebook.engine.createContext({ runtime });
    const cell = async (code) => {
      const t0 = now();
      const result = await notebook.engine.execute({ runtime, code, context: id });
      const ms = now() - t0;
      if (result.exitCode !== 0 || result.error)
        throw new Error(`a ${runtime} cell failed: ${result.error?.name ?? result.exitCode} ${result.stderr.slice(0, 300)}`);
      return ms;
    };
    const { init, cell: code } = CELLS[runtime];
    await cell(init);
    for (let i = 0; i < (config.quick ? 3 : config.warmup); i++) {
      await cell(code);
      await timedExecute(ephemeral.engine, ephemeral.observer, { runtime, code: PROGRAMS[runtime].code }, PROGRAMS[runtime].expect);
    }
    const cells = [];
    const warm = [];
    const guard = loopGuard(deadline, wanted, Math.min(3, wanted));
    for (let i = 0; guard.more(cells.length); i++) {
      assertNotStopped("a context cell");
      // Alternate which goes first, so drifting load hits both alike.
      const sides = [
        async () => cells.push(await cell(code)),
        async () =>
          warm.push((await timedExecute(ephemeral.engine, ephemeral.observer, { runtime, code: PROGRAMS[runtime].code }, PROGRAMS[runtime].expect)).ms),
      ];
      for (const side of i % 2 ? sides.reverse() : sides) await side();
    }
    // The state is the kernel's: after n+warmup cells, x counted every one.
    const count = await notebook.engine.execute({ runtime, code: "x", context: id });
    const seen = Number(count.outputs?.find((o) => o.result && o.type === "text/plain")?.data);
    const cellStats = summarize(cells);
    const warmStats = summarize(warm);
    return { runtime, cell: cellStats, warm: warmStats, ratioP50: ratio(cellStats.p50, warmStats.p50), cellsCounted: seen, truncated: guard.truncated };
  } finally {
    await Promise.allSettled([stopEngine(ctx, ephemeral.engine), stopEngine(ctx, notebook.engine)]);
  }
}

export async function contextsSection(ctx, deadline) {
  const runtimes = Object.keys(CELLS).filter((runtime) => (ctx.config.quick ? runtime === "python" : ctx.config.runtimes.includes(runtime)));
  const out = { runtimes: [] };
  for (const runtime of runtimes) {
    try {
      out.runtimes.push(await contextsForRuntime(ctx, runtime, deadline));
    } catch (error) {
      log(`contexts (${runtime}) failed: ${error.message}`);
      out.runtimes.push({ runtime, error: String(error.message ?? error) });
    }
  }
  return out;
}
