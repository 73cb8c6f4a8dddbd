import { useEffect, useRef } from "preact/hooks";
import type { CellError, ExecutionResult, RichOutput } from "@isol8/kit/results";

/** One piece of streamed text, with the stream it came from (shown in its own colour). */
export interface Chunk {
  /** stdin: a line the page sent to an interactive program (echoed in the output). */
  stream: "stdout" | "stderr" | "stdin";
  text: string;
}

export function StreamedText({ chunks, label }: { chunks: Chunk[]; label: string }) {
  return (
    <pre class="stream" aria-label={label} data-testid={label}>
      {chunks.map((chunk, i) => (
        <span key={i} class={chunk.stream}>
          {chunk.text}
        </span>
      ))}
    </pre>
  );
}

export function ResultLine({ result }: { result: ExecutionResult }) {
  const flags = (["truncated", "timedOut", "oomKilled"] as const).filter((flag) => result[flag]);
  return (
    <p class="result" data-testid="result">
      exit code <b data-testid="exit-code">{result.exitCode}</b> · {result.durationMs} ms
      {flags.map((flag) => (
        <span key={flag} class="flag" data-testid={`flag-${flag}`}>
          {flag}
        </span>
      ))}
      {result.contextRestarted && <span class="flag">context restarted</span>}
    </p>
  );
}

export function Traceback({ error }: { error: CellError }) {
  return (
    <pre class="traceback" data-testid="traceback">
      <b>
        {error.name}: {error.value}
      </b>
      {"\n"}
      {error.traceback.join("\n")}
    </pre>
  );
}

const base64Of = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

/**
 * HTML output: only inside a sandboxed frame without same-origin access. The frame document
 * (/ui/frame.html) has its own CSP (sandbox allow-scripts, no network) and takes the HTML by
 * postMessage, so the output's scripts run in an opaque origin: no storage, no key, no parent DOM.
 */
function HtmlFrame({ html }: { html: string }) {
  const frame = useRef<HTMLIFrameElement>(null);
  useEffect(() => {
    const element = frame.current!;
    let sent = false;
    // The frame says when it listens; only its own window is answered, and only once.
    const onMessage = (event: MessageEvent) => {
      if (sent || event.source !== element.contentWindow || (event.data as { isol8Frame?: string })?.isol8Frame !== "ready") return;
      sent = true;
      element.contentWindow!.postMessage({ isol8Html: html }, "*");
    };
    window.addEventListener("message", onMessage);
    return () => window.removeEventListener("message", onMessage);
  }, [html]);
  return <iframe ref={frame} class="html-output" sandbox="allow-scripts" src="/ui/frame.html" referrerpolicy="no-referrer" title="HTML output" />;
}

function RichOutputView({ output }: { output: RichOutput }) {
  if (output.truncated)
    return (
      <p class="omitted">
        {output.type} output left out ({output.omitted})
      </p>
    );
  const { type, data } = output;
  if (type === "image/svg+xml") return <img class="rich-image" alt="SVG output" src={`data:image/svg+xml;base64,${base64Of(data)}`} />;
  if (type.startsWith("image/")) return <img class="rich-image" alt={`${type} output`} src={`data:${type};base64,${data}`} />;
  if (type === "text/html") return <HtmlFrame html={data} />;
  if (type === "application/json") {
    let pretty = data;
    try {
      pretty = JSON.stringify(JSON.parse(data), null, 2);
    } catch {
      // shown as it came
    }
    return (
      <details class="json-output" open>
        <summary>JSON</summary>
        <pre>{pretty}</pre>
      </details>
    );
  }
  return <pre class="text-output">{data}</pre>;
}

/** The outputs in order; of a result's several forms of one value, the richest the page shows. */
export function RichOutputs({ outputs }: { outputs: RichOutput[] }) {
  const results = outputs.filter((o) => o.result);
  const best = ["image/png", "image/jpeg", "image/svg+xml", "text/html", "application/json", "text/markdown", "text/plain"].find((type) =>
    results.some((o) => o.type === type),
  );
  const shown = outputs.filter((o) => !o.result || o.type === best);
  return (
    <div class="rich-outputs" data-testid="rich-outputs">
      {shown.map((output, i) => (
        <RichOutputView key={i} output={output} />
      ))}
    </div>
  );
}
