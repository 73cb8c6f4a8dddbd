import type Docker from "dockerode";
import type { DockerIsol8 } from "@isol8/core";
import type { KubernetesDriver } from "@isol8/plugin-driver-kubernetes";

const SANDBOX_DRIVER_METHODS = [
  "ping",
  "answers",
  "ociRuntimes",
  "imageExists",
  "imageLabels",
  "create",
  "remove",
  "retryRemovals",
  "inspect",
  "list",
  "exec",
  "attach",
  "logs",
] as const;

/**
 * Until an engine takes a driver (plugins/driver-kubernetes/README.md, "Choosing the driver"),
 * the engine's own driver object is pointed at the Kubernetes driver: every part of the engine
 * holds that one object, so each SandboxDriver call goes to the API façade, none to Docker.
 * Returns the names of the calls made, in order.
 */
export function onKubernetes(engine: DockerIsol8, kubernetes: KubernetesDriver): string[] {
  const calls: string[] = [];
  const target = engine.driver as unknown as Record<string, unknown>;
  for (const method of SANDBOX_DRIVER_METHODS) {
    target[method] = (...args: unknown[]) => {
      calls.push(method);
      return (kubernetes[method] as (...a: unknown[]) => unknown).apply(kubernetes, args);
    };
  }
  Object.defineProperty(target, "unremoved", { get: () => kubernetes.unremoved });
  Object.defineProperty(target, "networks", { value: kubernetes.networks });
  Object.defineProperty(target, "kind", { value: kubernetes.kind });
  return calls;
}

/** The driver's `images` option for local images: what `isol8 setup --push` is to record (reference and labels). */
export async function pushedImages(docker: Docker, tags: readonly string[]): Promise<Record<string, { reference: string; labels: Record<string, string> }>> {
  const entries = await Promise.all(
    tags.map(async (tag) => [tag, { reference: tag, labels: (await docker.getImage(tag).inspect()).Config.Labels ?? {} }] as const),
  );
  return Object.fromEntries(entries);
}
