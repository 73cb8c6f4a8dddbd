import type { ExecutionResult, RichOutput } from "@isol8/kit";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

type Content = CallToolResult["content"][number];

const IMAGE_TYPES: Record<string, string> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".svg": "image/svg+xml",
};

/** The MIME type of an image file by its extension, else undefined. */
export function imageMimeType(path: string): string | undefined {
  const dot = path.lastIndexOf(".");
  return dot < 0 ? undefined : IMAGE_TYPES[path.slice(dot).toLowerCase()];
}

/**
 * The files a run sent back (outputPaths) as MCP content: an image as image content and anything
 * else as an embedded resource. A cell's display data (result.outputs) is richOutputContents'.
 */
export function outputContents(result: ExecutionResult): Content[] {
  return Object.entries(result.files ?? {}).map(([path, base64]): Content => {
    const mimeType = imageMimeType(path);
    if (mimeType) return { type: "image", data: base64, mimeType };
    return { type: "resource", resource: { uri: `file://${path}`, mimeType: "application/octet-stream", blob: base64 } };
  });
}

/** Binary image types of rich outputs (their data is base64): MCP image content. svg is text. */
const BINARY_IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);

/**
 * A cell's rich outputs (display(), the last expression's value) as MCP content, in order: a
 * binary image as image content, anything else (text/plain, text/markdown, text/html,
 * application/json, image/svg+xml…) as text under a header line naming its mime type, so the
 * model knows how to read it. An output left out (past a size bound) is a line saying so.
 */
export function richOutputContents(outputs: readonly RichOutput[]): Content[] {
  return outputs.map((output): Content => {
    const kind = output.result ? "result" : "display";
    if (output.omitted || output.truncated) {
      const size = output.sizeBytes === undefined ? "" : `, ${output.sizeBytes} bytes`;
      return { type: "text", text: `${kind} ${output.type}: left out (${output.omitted ?? "truncated"}${size})` };
    }
    if (BINARY_IMAGE_TYPES.has(output.type)) return { type: "image", data: output.data, mimeType: output.type };
    return { type: "text", text: `${kind} ${output.type}:\n${output.data}` };
  });
}
