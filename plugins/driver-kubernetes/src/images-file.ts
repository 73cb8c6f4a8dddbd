import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import * as z from "zod";

/** An entry of the file: always by digest (what `isol8 setup --push` writes). */
const pushedImageSchema = z.strictObject({
  reference: z.string().regex(/@sha256:[0-9a-f]{64}$/, "expected an image reference by digest (<registry>/<name>@sha256:<64 hex>)"),
  labels: z.record(z.string(), z.string()),
});

export interface PushedImageEntry {
  reference: string;
  labels: Record<string, string>;
}

/** The file `isol8 setup --push` writes (isol8-images.json): local image name → pushed image (plus its repository name). */
const pushManifestSchema = z.object({
  registry: z.string().optional(),
  images: z.record(z.string(), z.object({ name: z.string().optional(), reference: z.string(), labels: z.record(z.string(), z.string()).default({}) })),
});

/**
 * Reads the images file `isol8 setup --push` wrote (a path relative to the working directory),
 * when the plugin's options are validated: a missing or malformed file fails the config there,
 * naming the file, rather than the first pod.
 */
export function readImagesFile(path: string): Record<string, PushedImageEntry> {
  const full = resolve(path);
  let text: string;
  try {
    text = readFileSync(full, "utf8");
  } catch (error) {
    throw new Error(
      `images: cannot read "${full}" (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); write it with isol8 setup --push <registry>`,
      { cause: error },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`images: "${full}" is not JSON (${(error as Error).message})`, { cause: error });
  }
  const file = pushManifestSchema.safeParse(json);
  if (!file.success) throw new Error(`images: "${full}" is not an isol8 setup --push file: ${z.prettifyError(file.error).replace(/\n/g, "; ")}`);
  const entries: Record<string, PushedImageEntry> = {};
  for (const [image, entry] of Object.entries(file.data.images)) {
    const parsed = pushedImageSchema.safeParse({ reference: entry.reference, labels: entry.labels });
    if (!parsed.success) throw new Error(`images: "${full}": images["${image}"]: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
    entries[image] = parsed.data;
  }
  return entries;
}
