/**
 * Small programs the tools run inside a session's sandbox, per runtime: the engine runs code
 * only through a runtime, so listing files or creating the container needs one in the session's
 * own language. The directory comes in the environment (ISOL8_LIST_DIR), never in the code.
 */

/** The most entries list_files returns. */
export const MAX_LISTED = 1000;

const JS_LIST = `import("node:fs").then((fs) => import("node:path").then((path) => {
  const root = process.env.ISOL8_LIST_DIR; const out = [];
  const walk = (dir) => { for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (out.length >= ${MAX_LISTED}) return; const p = path.join(dir, e.name); const s = fs.lstatSync(p);
    out.push([path.relative(root, p), e.isDirectory() ? "directory" : e.isFile() ? "file" : "other", s.size]);
    if (e.isDirectory()) walk(p); } };
  walk(root); console.log(JSON.stringify(out)); }));
`;

const PROGRAMS: Record<string, { noop: string; list: string }> = {
  python: {
    noop: "pass\n",
    list: `import os, json
root = os.environ["ISOL8_LIST_DIR"]; out = []
for base, dirs, files in os.walk(root):
    dirs.sort()
    for name in sorted(dirs) + sorted(files):
        if len(out) >= ${MAX_LISTED}: break
        p = os.path.join(base, name); s = os.lstat(p)
        out.append([os.path.relpath(p, root), "directory" if name in dirs else ("file" if os.path.isfile(p) else "other"), s.st_size])
print(json.dumps(out))
`,
  },
  node: { noop: "0;\n", list: JS_LIST },
  bun: { noop: "0;\n", list: JS_LIST },
  deno: { noop: "0;\n", list: JS_LIST },
  bash: {
    noop: ":\n",
    list: `cd "$ISOL8_LIST_DIR" && find . -mindepth 1 -printf '%y\\t%s\\t%P\\n' | head -n ${MAX_LISTED} | while IFS=$'\\t' read -r t s p; do
  case "$t" in d) t=directory;; f) t=file;; *) t=other;; esac; printf '%s\\t%s\\t%s\\n' "$t" "$s" "$p"; done
`,
  },
};

/** A program that does nothing (creates the session's sandbox), or undefined for an unknown runtime. */
export function noopProgram(runtime: string): string | undefined {
  return PROGRAMS[runtime]?.noop;
}

/** A program that prints the files under $ISOL8_LIST_DIR, or undefined for an unknown runtime. */
export function listProgram(runtime: string): string | undefined {
  return PROGRAMS[runtime]?.list;
}

export interface ListedFile {
  path: string;
  type: "file" | "directory" | "other";
  sizeBytes: number;
}

/** Parses what a list program printed (JSON, or bash's tab-separated lines). */
export function parseListing(runtime: string, stdout: string): ListedFile[] {
  if (runtime === "bash") {
    return stdout
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const [type, size, ...rest] = line.split("\t");
        return { path: rest.join("\t"), type: type as ListedFile["type"], sizeBytes: Number(size) };
      });
  }
  const rows = JSON.parse(stdout.trim()) as [string, ListedFile["type"], number][];
  return rows.map(([path, type, sizeBytes]) => ({ path, type, sizeBytes }));
}
