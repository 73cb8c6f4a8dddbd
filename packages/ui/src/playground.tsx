import { useRef, useState } from "preact/hooks";
import type { ExecutionResult, RichOutput, RuntimeInfo, StreamEvent } from "@isol8/kit/results";
import { describeError, type Api } from "./api.js";
import { Editor } from "./editor.js";
import { runInteractive, type InteractiveRun } from "./interactive.js";
import { ResultLine, RichOutputs, StreamedText, type Chunk } from "./outputs.js";

const SAMPLES: Record<string, string> = {
  python: 'print("Hello from isol8")\nprint(6 * 7)\n',
  node: 'console.log("Hello from isol8");\nconsole.log(6 * 7);\n',
  bun: 'console.log("Hello from isol8");\nconsole.log(6 * 7);\n',
  deno: 'console.log("Hello from isol8");\nconsole.log(6 * 7);\n',
  bash: 'echo "Hello from isol8"\necho $((6 * 7))\n',
};

/**
 * One program at a time: Run streams it over SSE (POST /execute/stream), Stop aborts the request,
 * which cancels the run; interactive runs go over GET /execute/ws (stdin line by line, Stop kills).
 */
export function Playground({ api, runtimes }: { api: Api; runtimes: RuntimeInfo[] }) {
  const [runtime, setRuntime] = useState(runtimes.find((r) => r.name === "python")?.name ?? runtimes[0]?.name ?? "");
  const code = useRef(SAMPLES[runtime] ?? "");
  const [stdin, setStdin] = useState("");
  const [chunks, setChunks] = useState<Chunk[]>([]);
  const [outputs, setOutputs] = useState<RichOutput[]>([]);
  const [result, setResult] = useState<ExecutionResult>();
  const [status, setStatus] = useState<string>("");
  const running = useRef<AbortController | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [interactive, setInteractive] = useState(false);
  const session = useRef<InteractiveRun | undefined>(undefined);
  const [line, setLine] = useState("");
  const extension = runtimes.find((r) => r.name === runtime)?.extensions[0] ?? "";

  const onEvent = (event: StreamEvent) => {
    if (event.type === "stdout" || event.type === "stderr") setChunks((all) => [...all, { stream: event.type, text: event.data }]);
    else if (event.type === "display") setOutputs((all) => [...all, event.output]);
    else if (event.type === "exit") {
      setResult(event.result);
      setStatus("Done");
    } else if (event.type === "error") setStatus(`Error: ${event.code ?? "error"}: ${event.data}`);
  };

  const start = () => {
    setBusy(true);
    setChunks([]);
    setOutputs([]);
    setResult(undefined);
    setStatus("Running…");
  };

  const run = async () => {
    if (running.current || session.current) return;
    start();
    const body = { request: { runtime, code: code.current, ...(stdin && !interactive && { stdin }) } };
    if (interactive) {
      // Over the WebSocket: the program's input() is answered from the line box below.
      const live = runInteractive(api.key, body, onEvent);
      session.current = live;
      try {
        await live.done;
      } catch (error) {
        setStatus(`Error: ${describeError(error)}`);
      } finally {
        session.current = undefined;
        setBusy(false);
      }
      return;
    }
    const controller = new AbortController();
    running.current = controller;
    try {
      await api.stream(body, onEvent, controller.signal);
    } catch (error) {
      setStatus(controller.signal.aborted ? "Stopped" : `Error: ${describeError(error)}`);
    } finally {
      running.current = undefined;
      setBusy(false);
    }
  };

  const stop = () => {
    if (session.current) {
      session.current.kill();
      setStatus("Stopped");
    }
    running.current?.abort();
  };

  const sendLine = () => {
    session.current?.send(`${line}\n`);
    setChunks((all) => [...all, { stream: "stdin", text: `${line}\n` }]);
    setLine("");
  };

  return (
    <section class="playground" aria-label="Playground">
      <div class="toolbar">
        <label>
          Runtime{" "}
          <select data-testid="runtime" value={runtime} onChange={(e) => setRuntime((e.target as HTMLSelectElement).value)}>
            {runtimes.map((r) => (
              <option key={r.name} value={r.name}>
                {r.name}
              </option>
            ))}
          </select>
        </label>
        <span class="filename">main{extension}</span>
        <button data-testid="run" disabled={busy} onClick={() => void run()}>
          Run
        </button>
        <label>
          <input
            data-testid="interactive"
            type="checkbox"
            checked={interactive}
            disabled={busy}
            onChange={(e) => setInteractive((e.target as HTMLInputElement).checked)}
          />{" "}
          interactive
        </label>
        <button data-testid="stop" disabled={!busy} onClick={stop}>
          Stop
        </button>
        <span class="status" data-testid="status">
          {status}
        </span>
      </div>
      <Editor runtime={runtime} initial={code.current} onChange={(text) => (code.current = text)} onRun={() => void run()} label="Code" />
      {interactive ? (
        <form
          class="stdin-line"
          onSubmit={(e) => {
            e.preventDefault();
            sendLine();
          }}
        >
          <input
            data-testid="stdin-line"
            placeholder="a line for the program's stdin (Enter sends it)"
            disabled={!busy}
            value={line}
            onInput={(e) => setLine((e.target as HTMLInputElement).value)}
          />
          <button data-testid="stdin-send" type="submit" disabled={!busy}>
            Send
          </button>
          <button data-testid="stdin-end" type="button" disabled={!busy} onClick={() => session.current?.end()}>
            End input
          </button>
        </form>
      ) : (
        <label class="stdin">
          stdin
          <textarea data-testid="stdin" rows={2} value={stdin} onInput={(e) => setStdin((e.target as HTMLTextAreaElement).value)} />
        </label>
      )}
      <StreamedText chunks={chunks} label="output" />
      {outputs.length > 0 && <RichOutputs outputs={outputs} />}
      {result && <ResultLine result={result} />}
    </section>
  );
}
