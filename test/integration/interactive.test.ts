import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createStdin, type StreamEvent } from "@isol8/core";
import { DockerIsol8 } from "isol8";

// Interactive stdin through the library: executeStream(request, { stdin }). Runs on the launcher
// ISOL8_LAUNCHER selects (CI runs the suite again with exec): the executor drives the program
// turn by turn; the exec path (one docker exec per program, whose stdin is the request's archive)
// refuses it with ISOL8_ERR_NOT_SUPPORTED.

const EXEC_PATH = process.env.ISOL8_LAUNCHER === "exec";

/** Reads three lines with input() and answers each one (flushed, so the answer leaves at once). */
const THREE_TURNS = `
for turn in range(3):
    line = input()
    print(f"reply {turn}: {line.upper()}", flush=True)
print("bye", flush=True)
`;

let engine: DockerIsol8;
beforeAll(async () => {
  engine = new DockerIsol8({ timeoutMs: 60_000 });
  await engine.start();
});
afterAll(async () => {
  await engine.stop();
});

/**
 * Drives THREE_TURNS: writes a line, then waits for its reply before writing the next. `log`
 * records sends and replies in the order they happened.
 */
async function driveThreeTurns(events: AsyncIterable<StreamEvent>, send: (line: string) => void, end: () => void) {
  const log: string[] = [];
  const lines = ["alpha", "beta", "gamma"];
  let stdout = "";
  let exit: Extract<StreamEvent, { type: "exit" }> | undefined;
  let error: Extract<StreamEvent, { type: "error" }> | undefined;
  log.push(`send ${lines[0]}`);
  send(`${lines[0]}\n`);
  let turn = 0;
  for await (const event of events) {
    if (event.type === "error") error = event;
    if (event.type === "exit") exit = event;
    if (event.type !== "stdout") continue;
    stdout += event.data;
    // One reply per complete line the program printed.
    while (stdout.includes("\n")) {
      const line = stdout.slice(0, stdout.indexOf("\n"));
      stdout = stdout.slice(stdout.indexOf("\n") + 1);
      log.push(`got ${line}`);
      if (line.startsWith("reply")) {
        turn++;
        if (turn < lines.length) {
          log.push(`send ${lines[turn]}`);
          send(`${lines[turn]}\n`);
        } else end();
      }
    }
  }
  return { log, exit, error };
}

describe("executeStream with a stdin source", () => {
  test.runIf(!EXEC_PATH)("drives a program reading input() three times, turn by turn: each reply arrives before the next line is sent", async () => {
    const stdin = createStdin();
    const { log, exit, error } = await driveThreeTurns(
      engine.executeStream({ runtime: "python", code: THREE_TURNS }, { stdin }),
      (line) => expect(stdin.write(line)).toBe(true),
      () => stdin.end(),
    );
    expect(error).toBeUndefined();
    // The reply to each line came before the next line was sent: the program held line 1 only.
    expect(log).toEqual(["send alpha", "got reply 0: ALPHA", "send beta", "got reply 1: BETA", "send gamma", "got reply 2: GAMMA", "got bye"]);
    expect(exit?.result.exitCode).toBe(0);
    // The engine stopped reading the writer when the run ended: a late write is refused.
    expect(stdin.closed).toBe(true);
    expect(stdin.write("late\n")).toBe(false);
  });

  test.runIf(!EXEC_PATH)("the source's end closes the program's stdin (EOF), and an async generator is a source", async () => {
    async function* chunks() {
      yield "one\n";
      yield new TextEncoder().encode("two\n");
    }
    const result = await engine.execute({ runtime: "python", code: "import sys\ndata = sys.stdin.read()\nprint(repr(data), 'eof')" }, { stdin: chunks() });
    expect(result.stdout).toBe("'one\\ntwo\\n' eof\n");
    expect(result.exitCode).toBe(0);
  });

  test.runIf(!EXEC_PATH)("an idle interactive run still ends at its timeout", async () => {
    const stdin = createStdin(); // never written, never ended
    const result = await engine.execute({ runtime: "python", code: "input()", timeoutMs: 2_000 }, { stdin });
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBe(137);
    expect(stdin.closed).toBe(true);
  });

  test.runIf(!EXEC_PATH)("back-pressure: a program that never reads stdin stops the engine reading the source; the run still ends at its timeout", async () => {
    let pulled = 0;
    const chunk = new Uint8Array(256 * 1024);
    async function* endless() {
      for (;;) {
        pulled += chunk.length;
        yield chunk;
      }
    }
    const result = await engine.execute({ runtime: "python", code: "import time\ntime.sleep(600)", timeoutMs: 3_000 }, { stdin: endless() });
    expect(result.timedOut).toBe(true);
    // Bounded by what the connection and the executor hold (its stdin queue stops at 4 MiB), not by time.
    expect(pulled).toBeGreaterThan(0);
    expect(pulled).toBeLessThan(16 * 1024 * 1024);
  });

  test.runIf(EXEC_PATH)("the exec path refuses a stdin source with ISOL8_ERR_NOT_SUPPORTED naming the executor", async () => {
    const stdin = createStdin();
    stdin.write("alpha\n");
    const events: StreamEvent[] = [];
    for await (const event of engine.executeStream({ runtime: "python", code: THREE_TURNS }, { stdin })) events.push(event);
    expect(events, JSON.stringify(events).slice(0, 2000)).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: "error", code: "ISOL8_ERR_NOT_SUPPORTED" });
    expect(events[0]!.data).toMatch(/options\.stdin \(interactive stdin\) needs isol8's in-container executor/);
    // Positive control on the same path: the same program runs there with its input up front.
    const result = await engine.execute({ runtime: "python", code: THREE_TURNS, stdin: "a\nb\nc\n" });
    expect(result.stdout).toBe("reply 0: A\nreply 1: B\nreply 2: C\nbye\n");
  });

  test("request.stdin and a stdin source together are refused, naming both", async () => {
    const error = await engine.execute({ runtime: "python", code: "print(1)", stdin: "x" }, { stdin: createStdin() }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "ISOL8_ERR_INVALID_REQUEST" });
    expect((error as Error).message).toMatch(/request\.stdin and options\.stdin together/);
    const notASource = await engine.execute({ runtime: "python", code: "print(1)" }, { stdin: 42 as never }).catch((e: unknown) => e);
    expect(notASource).toMatchObject({ code: "ISOL8_ERR_INVALID_REQUEST" });
    expect((notASource as Error).message).toMatch(/options\.stdin: expected an async iterable/);
  });
});
