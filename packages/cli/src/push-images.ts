import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import {
  dockerConfigPath,
  parseRegistry,
  pushImage,
  resolveRegistryAuth,
  verifyRegistryLogin,
  type DockerDriver,
  type ProgressListener,
  type PushedImage,
} from "@isol8/core";

type Docker = DockerDriver["docker"];

/** Where `isol8 setup --push` writes its references unless `--push-manifest` says otherwise. */
export const DEFAULT_PUSH_MANIFEST = "isol8-images.json";

/**
 * The file `isol8 setup --push` writes and the Kubernetes driver's `images` option reads (a path
 * to it): each local image as the engine names it → what the cluster pulls, by digest, with the
 * image's labels (the API server cannot read them, the engine checks the executor's version in them).
 */
export interface PushManifest {
  registry: string;
  images: Record<string, { name: string; reference: string; labels: Record<string, string> }>;
}

export interface PushImagesRequest {
  /** `--push`: `registry.example:5000/isol8`. */
  registry: string;
  /** `--registry-auth user:password`; else the Docker config (see resolveRegistryAuth). */
  registryAuth?: string;
  /** `--push-manifest`: the file to write (default isol8-images.json in the cwd). */
  manifestPath?: string;
  /** The local images to push (`isol8/python:5f03bcec2a8b`), in order. */
  images: readonly string[];
  onProgress: ProgressListener;
}

/** The repository name under the registry path: the local repository without isol8's own prefix. */
function repositoryName(image: string): string {
  const repo = image.includes(":") ? image.slice(0, image.lastIndexOf(":")) : image;
  return repo.replace(/^isol8\//, "");
}

/**
 * Pushes each image, prints one line per image (`python  pushed  <registry>/python@sha256:…`),
 * then writes the manifest file (only when every push succeeded: a partial file would send a
 * cluster to an image that is not there). Returns the manifest and where it was written.
 */
export async function pushImages(docker: Docker, request: PushImagesRequest): Promise<{ manifest: PushManifest; path: string; pushed: PushedImage[] }> {
  const target = parseRegistry(request.registry);
  const auth = await resolveRegistryAuth(target.host, request.registryAuth);
  await verifyRegistryLogin(docker, auth, request.registryAuth !== undefined ? "--registry-auth" : dockerConfigPath());
  const pushed: PushedImage[] = [];
  for (const image of request.images) {
    const result = await pushImage(docker, { image, name: repositoryName(image), registry: target, auth, onProgress: request.onProgress });
    pushed.push(result);
    process.stdout.write(`${result.name.padEnd(8)} pushed     ${result.reference}  ${(result.durationMs / 1000).toFixed(1)}s\n`);
  }
  const manifest: PushManifest = {
    registry: [target.host, target.path].filter(Boolean).join("/"),
    images: Object.fromEntries(pushed.map((p) => [p.image, { name: p.name, reference: p.reference, labels: p.labels }])),
  };
  const path = resolve(request.manifestPath ?? DEFAULT_PUSH_MANIFEST);
  await writeFile(path, JSON.stringify(manifest, null, 2) + "\n");
  process.stdout.write(`wrote ${path} (the Kubernetes driver's images option: images: "${request.manifestPath ?? DEFAULT_PUSH_MANIFEST}")\n`);
  return { manifest, path, pushed };
}
