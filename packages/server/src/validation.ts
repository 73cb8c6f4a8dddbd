import type * as z from "zod";

export interface Issue {
  path: string;
  message: string;
}

function joinPath(prefix: string | undefined, path: readonly PropertyKey[]): string {
  return [prefix, ...path.map((p) => (typeof p === "number" ? `[${p}]` : String(p)))]
    .filter((p) => p !== undefined && p !== "")
    .join(".")
    .replace(/\.\[/g, "[");
}

/**
 * A zod error as one issue per bad field, each with its path ("options.memoryLimit"). An unknown
 * key is reported at its own path ("options.image") rather than at its parent's, and a bad record
 * key with the key schema's own message.
 */
export function zodIssues(error: z.ZodError, prefix?: string, unknownKeyHint?: (path: readonly PropertyKey[]) => string | undefined): Issue[] {
  const out: Issue[] = [];
  const visit = (issue: z.core.$ZodIssue, base: readonly PropertyKey[]) => {
    const path = [...base, ...issue.path];
    if (issue.code === "invalid_key") {
      for (const inner of issue.issues) visit(inner, path);
      return;
    }
    if (issue.code === "unrecognized_keys") {
      const hint = unknownKeyHint?.(path);
      for (const key of issue.keys) out.push({ path: joinPath(prefix, [...path, key]), message: `unknown key${hint ? ` (${hint})` : ""}` });
      return;
    }
    out.push({ path: joinPath(prefix, path) || "(root)", message: issue.message });
  };
  for (const issue of error.issues) visit(issue, []);
  return out;
}

export function formatIssues(issues: readonly Issue[]): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join("; ");
}
