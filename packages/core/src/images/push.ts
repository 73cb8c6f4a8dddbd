import type Docker from "dockerode";
import { ImageBuildError } from "@isol8/kit";
import type { ProgressListener } from "./progress.js";
import type { RegistryAuthConfig, RegistryTarget } from "./registry-auth.js";

/**
 * A push that did not end with a manifest in the registry: the daemon could not reach it, the
 * registry refused the credentials, or a layer upload failed (Docker reports those inside the
 * push's progress stream, after a 200). Carries the ISOL8_ERR_IMAGE_BUILD code (preparing an
 * image for the cluster failed); `image`, `reference` and `registryMessage` say which and why.
 */
export class ImagePushError extends ImageBuildError {
  constructor(
    readonly image: string,
    readonly reference: string,
    readonly registryMessage: string,
    options?: { cause?: unknown },
  ) {
    super(`pushing ${image} to ${reference} failed: ${registryMessage}`, options);
  }
}

/** The registry refused the credentials (or could not be reached) when the daemon logged in to it, before any push. */
export class RegistryLoginError extends ImageBuildError {
  constructor(
    readonly registry: string,
    readonly registryMessage: string,
    options?: { cause?: unknown },
  ) {
    super(`logging in to the registry ${registry} failed: ${registryMessage}`, options);
  }
}

/**
 * Checks the credentials through the daemon (POST /auth, what `docker login` does) before the
 * first push: a wrong password then fails at once, naming the registry, instead of after the
 * daemon's retries of every layer upload (about 50 s). `source` says where they came from.
 * Anonymous pushes are not checked (nothing to log in with).
 */
export async function verifyRegistryLogin(docker: Docker, auth: RegistryAuthConfig, source: string): Promise<void> {
  if (auth.username === undefined && auth.identitytoken === undefined) return;
  try {
    await docker.checkAuth({ ...auth });
  } catch (error) {
    throw new RegistryLoginError(auth.serveraddress, `${daemonMessage(error)} (credentials from ${source})`, { cause: error });
  }
}

/** One image as the cluster pulls it. */
export interface PushedImage {
  /** The local image, as the engine names it (`isol8/python:5f03bcec2a8b`): the key the Kubernetes driver looks up. */
  image: string;
  /** The runtime (or derived image name) it serves. */
  name: string;
  /** `registry.example:5000/isol8/python:5f03bcec2a8b` */
  tagged: string;
  /** `registry.example:5000/isol8/python@sha256:…`: what pods refer to. */
  reference: string;
  /** The manifest digest the registry accepted (the push's final aux message). */
  digest: string;
  /** The image's labels (the executor's protocol version among them): the API server cannot read them. */
  labels: Record<string, string>;
  /** Layers uploaded now, and layers the registry already had (or mounted from another repository). */
  layers: { pushed: number; existing: number };
  durationMs: number;
}

export interface PushImageRequest {
  /** The local image (`isol8/python:5f03bcec2a8b`). */
  image: string;
  /** Shown in progress lines; also the repository name under the registry path. */
  name: string;
  registry: RegistryTarget;
  auth: RegistryAuthConfig;
  onProgress?: ProgressListener;
}

interface PushMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
  aux?: { Tag?: string; Digest?: string; Size?: number };
}

/** `<registry>/<name>` without a tag: the repository the image goes to. */
export function pushRepository(registry: RegistryTarget, name: string): string {
  return [registry.host, registry.path, name].filter(Boolean).join("/");
}

/**
 * Tags `image` as `<registry>/<name>:<its tag>` and pushes it through the Docker Engine API
 * (POST /images/{name}/push with X-Registry-Auth), following the JSON progress stream: per-layer
 * statuses become progress events, an `error` in the stream fails the push, and the final `aux`
 * message carries the manifest digest the registry computed.
 */
export async function pushImage(docker: Docker, request: PushImageRequest): Promise<PushedImage> {
  const started = performance.now();
  const emit = request.onProgress ?? (() => {});
  const status = (message: string) => emit({ target: request.name, kind: "status", message });
  const local = docker.getImage(request.image);
  const info = await local.inspect().catch((error: unknown) => {
    throw new ImagePushError(
      request.image,
      pushRepository(request.registry, request.name),
      `the local image is missing (${(error as Error).message}); run isol8 setup first`,
      { cause: error },
    );
  });
  const tag = request.image.includes(":") ? request.image.slice(request.image.lastIndexOf(":") + 1) : "latest";
  const repo = pushRepository(request.registry, request.name);
  const tagged = `${repo}:${tag}`;
  await local.tag({ repo, tag });
  status(`Pushing ${request.image} as ${tagged}`);

  const messages: PushMessage[] = [];
  const layerStatus = new Map<string, string>();
  let stream: NodeJS.ReadableStream;
  try {
    stream = (await docker.getImage(repo).push({ tag, authconfig: request.auth })) as NodeJS.ReadableStream;
  } catch (error) {
    throw new ImagePushError(request.image, tagged, daemonMessage(error), { cause: error });
  }
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (error: Error | null) => (error ? reject(new ImagePushError(request.image, tagged, error.message, { cause: error })) : resolve()),
      (message: PushMessage) => {
        messages.push(message);
        if (message.error || message.errorDetail || message.aux || !message.status) return;
        if (message.id && message.id !== tag) {
          // One line per layer and state change ("Preparing", "Pushed", "Layer already exists"), not per byte.
          const state = message.status;
          if (layerStatus.get(message.id) === state) return;
          layerStatus.set(message.id, state);
          emit({ target: request.name, kind: isFinal(state) ? "step" : "log", message: `${message.id}: ${state}` });
        } else {
          emit({ target: request.name, kind: "log", message: message.status });
        }
      },
    );
  });

  const failure = messages.find((m) => m.error || m.errorDetail);
  if (failure) {
    const message = failure.errorDetail?.message ?? failure.error ?? "unknown error";
    // Credentials were checked before the first push (verifyRegistryLogin): a refusal here is either an anonymous push or missing push rights.
    const anonymous = request.auth.username === undefined && request.auth.identitytoken === undefined;
    const hint =
      anonymous && /unauthorized|authentication required|no basic auth|denied/i.test(message)
        ? ` (the push to ${request.registry.host} was anonymous: give credentials with --registry-auth, or docker login ${request.registry.host})`
        : "";
    throw new ImagePushError(request.image, tagged, message + hint);
  }
  const digest = messages.find((m) => m.aux?.Digest)?.aux?.Digest;
  if (!digest || !/^sha256:[0-9a-f]{64}$/.test(digest)) {
    throw new ImagePushError(request.image, tagged, "the push ended without the manifest digest (no aux message in Docker's progress stream)");
  }
  const states = [...layerStatus.values()];
  const existing = states.filter((s) => s === "Layer already exists" || s.startsWith("Mounted from")).length;
  const pushed = states.filter((s) => s === "Pushed").length;
  const durationMs = performance.now() - started;
  const reference = `${repo}@${digest}`;
  status(`Pushed ${reference} (${pushed} layers uploaded, ${existing} already there) in ${(durationMs / 1000).toFixed(1)} s`);
  return {
    image: request.image,
    name: request.name,
    tagged,
    reference,
    digest,
    labels: { ...(info.Config?.Labels ?? {}) },
    layers: { pushed, existing },
    durationMs,
  };
}

function isFinal(state: string): boolean {
  return state === "Pushed" || state === "Layer already exists" || state.startsWith("Mounted from");
}

/** dockerode's HTTP errors carry the daemon's JSON body (`{"message": …}`) in `json`. */
function daemonMessage(error: unknown): string {
  const json = (error as { json?: { message?: string } | string }).json;
  if (typeof json === "object" && json?.message) return json.message;
  if (typeof json === "string" && json) return json;
  return (error as Error).message;
}
