import { useRef, useState } from "preact/hooks";
import { describeError, type Api, type ExecutionResult, type RuntimeInfo } from "./api.js";
import { Editor } from "./editor.js";
import { ResultLine, RichOutputs, StreamedText, type Chunk } from "./outputs.js";
import type { RichOutput } from "./api.js";

export const SAMPLES: Record<string, string> = {
  python: 'print("Hello from isol8")\nprint(6 * 7)\n',
  node: 'console.log("Hello from isol8");\nconsole.log(6 * 7);\n',
  bun: 'console.log("Hello from isol8");\nconsole.log(6 * 7);\n',
  deno: 'console.log("Hello from isol8");\nconsole.log(6 * 7);\n',
  bash: 'echo "Hello from isol8"\necho $((6 * 7))\n',
};

/** One program at a time: Run streams it over SSE (POST /execute/stream); Stop aborts the request, which cancels the run. */
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
  const extension = runtimes.find((r) => r.name === runtime)?.extensions[0] ?? "";

  const run = async () => {
    if (running.current) return;
    const controller = new AbortController();
    running.current = controller;
    setBusy(true);
    setChunks([]);
    setOutputs([]);
    setResult(undefined);
    setStatus("Running…");
    try {
      await api.stream(
        { request: { runtime, code: code.current, ...(stdin && { stdin }) } },
        (event) => {
          if (event.type === "stdout" || event.type === "stderr") setChunks((all) => [...all, { stream: event.type, text: event.data }]);
          else if (event.type === "display") setOutputs((all) => [...all, event.output]);
          else if (event.type === "exit") {
            setResult(event.result);
            setStatus("Done");
          } else if (event.type === "error") setStatus(`Error: ${event.code ?? "error"}: ${event.data}`);
        },
        controller.signal,
      );
    } catch (error) {
      setStatus(controller.signal.aborted ? "Stopped" : `Error: ${describeError(error)}`);
    } finally {
      running.current = undefined;
      setBusy(false);
    }
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
        <button data-testid="stop" disabled={!busy} onClick={() => running.current?.abort()}>
          Stop
        </button>
        <span class="status" data-testid="status">
          {status}
        </span>
      </div>
      <Editor runtime={runtime} initial={code.current} onChange={(text) => (code.current = text)} onRun={() => void run()} label="Code" />
      <label class="stdin">
        stdin
        <textarea data-testid="stdin" rows={2} value={stdin} onInput={(e) => setStdin((e.target as HTMLTextAreaElement).value)} />
      </label>
      <StreamedText chunks={chunks} label="output" />
      {outputs.length > 0 && <RichOutputs outputs={outputs} />}
      {result && <ResultLine result={result} />}
    </section>
  );
}
