import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join, posix, relative, sep } from "node:path";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import type { DockerDriver } from "../docker/driver.js";
import { ImageBuildError } from "@isol8/kit";
import type { RecipeFile } from "@isol8/kit";
import type { ProgressListener } from "./progress.js";

/** How many output lines an ImageBuildError quotes. */
const TAIL_LINES = 25;

export interface DockerBuildRequest {
  /** For progress events and messages: a runtime name or "base". */
  target: string;
  /** The first tag names the image in messages. */
  tags: string[];
  dockerfile: string;
  files?: Record<string, RecipeFile>;
  labels: Record<string, string>;
  nocache?: boolean;
  onProgress?: ProgressListener;
  /** What each Dockerfile instruction does, in order (index 0 is Step 1): a failure names its step. */
  stepNames?: readonly string[];
  /** The build's network: "host" reaches services on the host's loopback. Default: Docker's bridge. */
  network?: "default" | "host";
}

/**
 * Runs a classic `docker build` through the Engine API (API 1.41 has no BuildKit session
 * here) with an in-memory tar context, streaming its output as progress. Resolves with the
 * image id; an `error` line becomes an ImageBuildError quoting the last lines of output.
 */
export async function dockerBuild(driver: DockerDriver, request: DockerBuildRequest): Promise<string> {
  const emit = request.onProgress ?? (() => {});
  const tail: string[] = [];
  let step: string | undefined;
  const note = (kind: "step" | "log", message: string) => {
    if (kind === "step") step = message;
    tail.push(message);
    if (tail.length > TAIL_LINES) tail.shift();
    emit({ target: request.target, kind, message });
  };

  const context = tar.pack();
  // The daemon reads the context while we write it, so both run at once; a failure to
  // write (a missing file) tears the upload down and is the error reported.
  const writing = writeContext(context, request.dockerfile, request.files ?? {}).catch((error: unknown) => {
    context.destroy(error as Error);
    throw error;
  });
  writing.catch(() => {}); // awaited below; this only keeps an early failure from being "unhandled"

  let output: Readable;
  try {
    // tar-stream's pack is a streamx Readable: it pipes like a Node stream but is typed apart.
    output = (await driver.buildImage(context as unknown as Readable, {
      t: request.tags,
      labels: request.labels,
      rm: true,
      forcerm: true,
      nocache: request.nocache ?? false,
      ...(request.network === "host" && { networkmode: "host" }),
    })) as Readable;
  } catch (error) {
    await writing;
    throw error;
  }

  let imageId: string | undefined;
  let failure: string | undefined;
  for await (const line of createInterface({ input: output, crlfDelay: Infinity })) {
    if (!line.trim()) continue;
    let message: { stream?: string; status?: string; error?: string; errorDetail?: { message?: string }; aux?: { ID?: string } };
    try {
      message = JSON.parse(line) as typeof message;
    } catch {
      note("log", line);
      continue;
    }
    if (message.error || message.errorDetail) {
      failure = message.errorDetail?.message ?? message.error;
      break;
    }
    if (message.aux?.ID) imageId = message.aux.ID;
    const text = message.stream ?? message.status;
    for (const part of text?.split("\n") ?? []) {
      const trimmed = part.trimEnd();
      if (trimmed) note(/^Step \d+\/\d+ : /.test(trimmed) ? "step" : "log", trimmed);
    }
  }
  output.destroy();
  await writing;

  const image = request.tags[0];
  if (failure !== undefined) {
    throw new ImageBuildError(
      `Building ${image} (${request.target}) failed${failedStep(step, request.stepNames)}: ${failure.trim()}\nLast output:\n${tail.join("\n")}`,
    );
  }
  if (!imageId) {
    // API 1.41 always sends aux.ID for classic builds; fall back to the tag to be safe.
    const info = await driver.docker
      .getImage(image)
      .inspect()
      .catch(() => undefined);
    if (!info) throw new ImageBuildError(`Building ${image} (${request.target}) ended without an image.\nLast output:\n${tail.join("\n")}`);
    imageId = info.Id;
  }
  return imageId;
}

/** " at step 4/9 (apt: RUN apt-get ...)" from the last "Step 4/9 : RUN ..." line, or "" before any step. */
function failedStep(line: string | undefined, names: readonly string[] | undefined): string {
  const match = line && /^Step (\d+)\/(\d+) : (.*)$/.exec(line);
  if (!match) return "";
  const name = names?.[Number(match[1]) - 1];
  const instruction = match[3].length > 160 ? `${match[3].slice(0, 160)}…` : match[3];
  return ` at step ${match[1]}/${match[2]} (${name ? `${name}: ` : ""}${instruction})`;
}

async function writeContext(pack: tar.Pack, dockerfile: string, files: Record<string, RecipeFile>): Promise<void> {
  await addEntry(pack, { name: "Dockerfile", mode: 0o644 }, Buffer.from(dockerfile));
  for (const [rawName, file] of Object.entries(files)) {
    const name = posix.normalize(rawName);
    if (name.startsWith("/") || name.startsWith("..") || name === "Dockerfile" || name === ".") {
      throw new ImageBuildError(`Build context file name ${JSON.stringify(rawName)} must be a relative path inside the context (and not "Dockerfile").`);
    }
    if ("directory" in file) {
      for (const relative of await listFiles(file.directory)) {
        await addFile(pack, posix.join(name, relative.split(sep).join("/")), join(file.directory, relative));
      }
    } else if ("path" in file) {
      const info = await stat(file.path).catch((error: unknown) => {
        throw new ImageBuildError(`Build context file ${name}: cannot read ${file.path}: ${(error as Error).message}`, { cause: error });
      });
      // COPY keeps the mode from the context (the classic builder has no --chmod), so it is set here.
      const header = { name, size: info.size, mode: file.mode ?? info.mode & 0o777 };
      await pipeline(createReadStream(file.path), pack.entry(header));
    } else {
      const content = typeof file.content === "string" ? Buffer.from(file.content) : Buffer.from(file.content);
      await addEntry(pack, { name, mode: file.mode ?? 0o644 }, content);
    }
  }
  pack.finalize();
}

/** Every regular file under `root`, as paths relative to it. */
async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch((error: unknown) => {
    throw new ImageBuildError(`Build context directory ${root}: ${(error as Error).message}`, { cause: error });
  });
  return entries.filter((e) => e.isFile()).map((e) => relative(root, join(e.parentPath ?? e.path, e.name)));
}

async function addFile(pack: tar.Pack, name: string, path: string): Promise<void> {
  const info = await stat(path);
  await pipeline(createReadStream(path), pack.entry({ name, size: info.size, mode: info.mode & 0o777 }));
}

function addEntry(pack: tar.Pack, header: Parameters<tar.Pack["entry"]>[0], content: Buffer): Promise<void> {
  return new Promise((resolve, reject) => pack.entry(header, content, (error) => (error ? reject(error) : resolve())));
}
