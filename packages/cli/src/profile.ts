/**
 * ISOL8_PROFILE=1: where a CLI run's time goes, one line per step on stderr, each with the
 * milliseconds since the process started (performance.now() counts from there) and since the line
 * before. Off by default: then every function here returns at once and changes nothing.
 */
export const profiling = process.env.ISOL8_PROFILE === "1";

let last = 0;

/** One profile line: `step` ended now. */
export function mark(step: string): void {
  if (!profiling) return;
  const now = performance.now();
  process.stderr.write(`isol8 profile: ${now.toFixed(1).padStart(7)} ms  +${(now - last).toFixed(1).padStart(6)}  ${step}\n`);
  last = now;
}

/** The part of docker-modem the trace wraps: every Docker Engine API call goes through dial. */
interface Modem {
  dial(options: { method?: string; path?: string; hijack?: boolean }, callback: (error: unknown, result: unknown) => void): unknown;
}

/** Docker API paths with their ids shortened: "/containers/:id/start". */
function shortPath(path: string | undefined): string {
  return (path ?? "?").replace(/\?.*$/, "").replace(/\/[0-9a-f]{64}(?=\/|$)/, "/:id");
}

/**
 * Marks every Docker API call the engine makes (sent, answered) and, on a hijacked attach stream
 * (the executor's channel), the first bytes after the container started: the executor's HELLO.
 * The attach stream is observed through its emit, so its flowing mode is left to its owner.
 */
export function traceDockerCalls(client: unknown): void {
  if (!profiling) return;
  const modem = (client as { modem?: Modem }).modem;
  if (!modem) return;
  const dial = modem.dial.bind(modem);
  modem.dial = (options, callback) => {
    const what = `${options.method ?? "GET"} ${shortPath(options.path)}`;
    const sent = performance.now();
    return dial(options, (error, result) => {
      mark(`docker ${what}: ${error ? "failed" : "answered"} (${(performance.now() - sent).toFixed(1)} ms)`);
      if (!error && options.hijack && result && typeof (result as NodeJS.EventEmitter).emit === "function") observeFirstBytes(result as NodeJS.EventEmitter);
      callback(error, result);
    });
  };
}

function observeFirstBytes(stream: NodeJS.EventEmitter): void {
  const emit = stream.emit.bind(stream);
  let seen = 0;
  stream.emit = (event: string | symbol, ...args: unknown[]) => {
    if (event === "data" && seen < 2)
      mark(seen++ === 0 ? "attach stream: first bytes (the executor's HELLO)" : "attach stream: second chunk (first frame after HELLO)");
    return emit(event, ...args);
  };
}
