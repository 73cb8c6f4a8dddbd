import { javascript } from "@codemirror/lang-javascript";
import { python } from "@codemirror/lang-python";
import { Compartment, type Extension } from "@codemirror/state";
import { EditorView, keymap } from "@codemirror/view";
import { basicSetup } from "codemirror";
import { useEffect, useRef } from "preact/hooks";

/**
 * CodeMirror 6 injects its styles as <style> elements: the page's CSP allows them only with the
 * per-response nonce the server puts in <meta name="isol8-style-nonce"> (no 'unsafe-inline').
 */
const styleNonce = document.querySelector<HTMLMetaElement>('meta[name="isol8-style-nonce"]')?.content ?? "";

function languageOf(runtime: string): Extension {
  if (runtime.startsWith("python")) return python();
  if (runtime === "node" || runtime === "bun" || runtime === "deno") return javascript({ typescript: runtime !== "node" });
  return [];
}

export interface EditorProps {
  /** The runtime picks the syntax highlighting. */
  runtime: string;
  initial: string;
  onChange: (code: string) => void;
  /** Ctrl/Cmd+Enter. */
  onRun?: () => void;
  label: string;
}

export function Editor({ runtime, initial, onChange, onRun, label }: EditorProps) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | undefined>(undefined);
  const language = useRef(new Compartment());
  const callbacks = useRef({ onChange, onRun });
  callbacks.current = { onChange, onRun };

  useEffect(() => {
    const editor = new EditorView({
      doc: initial,
      parent: host.current!,
      extensions: [
        EditorView.cspNonce.of(styleNonce),
        keymap.of([{ key: "Mod-Enter", run: () => (callbacks.current.onRun?.(), true) }]),
        basicSetup,
        language.current.of(languageOf(runtime)),
        EditorView.contentAttributes.of({ "aria-label": label }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) callbacks.current.onChange(update.state.doc.toString());
        }),
      ],
    });
    view.current = editor;
    return () => editor.destroy();
  }, []);

  useEffect(() => {
    view.current?.dispatch({ effects: language.current.reconfigure(languageOf(runtime)) });
  }, [runtime]);

  return <div class="editor" ref={host} />;
}
