import { useEffect, useRef, useState } from "preact/hooks";
import type { ExecutionResult, RichOutput, RuntimeInfo } from "@isol8/kit/results";
import { describeError, fromBase64, toBase64, type Api } from "./api.js";
import { Editor } from "./editor.js";
import { ResultLine, RichOutputs, StreamedText, Traceback, type Chunk } from "./outputs.js";

interface ContextInfo {
  id: string;
  runtime: string;
}

interface Cell {
  id: number;
  code: string;
  chunks: Chunk[];
  outputs: RichOutput[];
  result?: ExecutionResult;
  status?: string;
}

let nextCell = 1;
const newCell = (code = ""): Cell => ({ id: nextCell++, code, chunks: [], outputs: [] });

/**
 * Cells in an interpreter context of a session (POST /session/{id}/contexts; each cell is POST
 * /execute/stream with the sessionId and request.context), the context's restart and delete, and
 * the session's files (POST and GET /file).
 */
export function Notebook({ api, runtimes }: { api: Api; runtimes: RuntimeInfo[] }) {
  const withContexts = runtimes.filter((r) => r.contexts);
  const [runtime, setRuntime] = useState(withContexts.find((r) => r.name === "python")?.name ?? withContexts[0]?.name ?? "");
  const [sessionId] = useState(() => `notebook-${crypto.randomUUID().slice(0, 8)}`);
  const [context, setContext] = useState<ContextInfo>();
  const [cells, setCells] = useState<Cell[]>([newCell()]);
  const [status, setStatus] = useState("");
  const [downloadPath, setDownloadPath] = useState("/sandbox/");
  const running = useRef(new Map<number, AbortController>());
  const started = useRef(false);
  // The session ends with the page (its container goes at once, not at the idle reaper's time).
  useEffect(() => {
    const end = () => {
      if (started.current) void fetch(`/session/${sessionId}`, { method: "DELETE", headers: { Authorization: `Bearer ${api.key}` }, keepalive: true });
    };
    window.addEventListener("pagehide", end);
    return () => window.removeEventListener("pagehide", end);
  }, [api, sessionId]);
  /** Each cell's text as typed (kept out of state: typing re-renders nothing). */
  const codes = useRef(new Map<number, string>());

  const update = (id: number, change: (cell: Cell) => Partial<Cell>) => setCells((all) => all.map((c) => (c.id === id ? { ...c, ...change(c) } : c)));
  const act = async (what: string, work: () => Promise<void>) => {
    setStatus(`${what}…`);
    try {
      await work();
      setStatus(`${what}: done`);
    } catch (error) {
      setStatus(`${what}: ${describeError(error)}`);
    }
  };

  const start = () =>
    act("Start context", async () => {
      started.current = true;
      setContext(await api.json<ContextInfo>("POST", `/session/${sessionId}/contexts`, { runtime }));
    });
  const restart = () => act("Restart", async () => void (await api.json("POST", `/session/${sessionId}/contexts/${context!.id}/restart`)));
  const remove = () =>
    act("Delete context", async () => {
      await api.json("DELETE", `/session/${sessionId}/contexts/${context!.id}`);
      setContext(undefined);
    });

  const runCell = async (cell: Cell) => {
    if (!context || running.current.has(cell.id)) return;
    const controller = new AbortController();
    running.current.set(cell.id, controller);
    update(cell.id, () => ({ chunks: [], outputs: [], result: undefined, status: "Running…" }));
    try {
      await api.stream(
        { sessionId, request: { runtime: context.runtime, code: codes.current.get(cell.id) ?? cell.code, context: context.id } },
        (event) => {
          if (event.type === "stdout" || event.type === "stderr") update(cell.id, (c) => ({ chunks: [...c.chunks, { stream: event.type, text: event.data }] }));
          else if (event.type === "display") update(cell.id, (c) => ({ outputs: [...c.outputs, event.output] }));
          // The result's outputs are the whole ordered list (with the last expression's value).
          else if (event.type === "exit") update(cell.id, () => ({ result: event.result, outputs: event.result.outputs ?? [], status: "" }));
          else if (event.type === "error") update(cell.id, () => ({ status: `Error: ${event.code ?? "error"}: ${event.data}` }));
        },
        controller.signal,
      );
    } catch (error) {
      update(cell.id, () => ({ status: `Error: ${describeError(error)}` }));
    } finally {
      running.current.delete(cell.id);
    }
  };

  const upload = (files: FileList | null) =>
    act("Upload", async () => {
      for (const file of Array.from(files ?? [])) {
        const content = toBase64(new Uint8Array(await file.arrayBuffer()));
        await api.json("POST", "/file", { sessionId, path: `/sandbox/${file.name}`, content });
      }
    });
  const download = () =>
    act("Download", async () => {
      const { content } = await api.json<{ content: string }>("GET", `/file?${new URLSearchParams({ sessionId, path: downloadPath })}`);
      const url = URL.createObjectURL(new Blob([fromBase64(content)]));
      const link = Object.assign(document.createElement("a"), { href: url, download: downloadPath.split("/").pop() || "file" });
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    });

  return (
    <section class="notebook" aria-label="Notebook">
      <div class="toolbar">
        <label>
          Runtime{" "}
          <select data-testid="nb-runtime" value={runtime} disabled={!!context} onChange={(e) => setRuntime((e.target as HTMLSelectElement).value)}>
            {withContexts.map((r) => (
              <option key={r.name} value={r.name}>
                {r.name}
              </option>
            ))}
          </select>
        </label>
        <span class="filename">session {sessionId}</span>
        {!context && (
          <button data-testid="nb-start" onClick={() => void start()}>
            Start context
          </button>
        )}
        {context && (
          <>
            <span data-testid="nb-context">context {context.id}</span>
            <button data-testid="nb-restart" onClick={() => void restart()}>
              Restart
            </button>
            <button data-testid="nb-delete" onClick={() => void remove()}>
              Delete
            </button>
          </>
        )}
        <span class="status" data-testid="nb-status">
          {status}
        </span>
      </div>
      {cells.map((cell, index) => (
        <div class="cell" key={cell.id} data-testid={`cell-${index}`}>
          <div class="cell-head">
            <span>[{index + 1}]</span>
            <button data-testid="cell-run" disabled={!context} onClick={() => void runCell(cell)}>
              Run
            </button>
            <span class="status">{cell.status}</span>
          </div>
          <Editor
            runtime={context?.runtime ?? runtime}
            initial={cell.code}
            onChange={(code) => codes.current.set(cell.id, code)}
            onRun={() => void runCell(cell)}
            label={`Cell ${index + 1}`}
          />
          {cell.chunks.length > 0 && <StreamedText chunks={cell.chunks} label={`cell-output-${index}`} />}
          {cell.result?.error && <Traceback error={cell.result.error} />}
          {cell.outputs.length > 0 && <RichOutputs outputs={cell.outputs} />}
          {cell.result && <ResultLine result={cell.result} />}
        </div>
      ))}
      <div class="toolbar">
        <button data-testid="nb-add" onClick={() => setCells((all) => [...all, newCell()])}>
          Add cell
        </button>
        <label>
          Upload to /sandbox{" "}
          <input data-testid="nb-upload" type="file" multiple disabled={!context} onChange={(e) => void upload((e.target as HTMLInputElement).files)} />
        </label>
        <input data-testid="nb-download-path" value={downloadPath} onInput={(e) => setDownloadPath((e.target as HTMLInputElement).value)} />
        <button data-testid="nb-download" disabled={!context} onClick={() => void download()}>
          Download
        </button>
      </div>
    </section>
  );
}
