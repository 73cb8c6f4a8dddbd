import type { ExecutionResult } from "@isol8/kit";
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
 * The rich outputs of a run as MCP content: today the files the call asked back (outputPaths),
 * an image as image content and anything else as an embedded resource. When the engine grows
 * result.outputs (the code interpreter's display data), map them here too: this is the one place.
 */
export function outputContents(result: ExecutionResult): Content[] {
  return Object.entries(result.files ?? {}).map(([path, base64]): Content => {
    const mimeType = imageMimeType(path);
    if (mimeType) return { type: "image", data: base64, mimeType };
    return { type: "resource", resource: { uri: `file://${path}`, mimeType: "application/octet-stream", blob: base64 } };
  });
}
