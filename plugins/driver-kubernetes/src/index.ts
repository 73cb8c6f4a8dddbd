import { definePlugin } from "@isol8/kit";
import { KubernetesDriver } from "./driver.js";
import { kubernetesDriverOptionsSchema, type KubernetesDriverOptions } from "./options.js";

export const PLUGIN_NAME = "@isol8/plugin-driver-kubernetes";

/**
 * The Kubernetes driver as a plugin. The kit has no driver registry yet: the plugin's `api` is a
 * factory the host passes to the engine (`new DockerIsol8(options, { plugins, driver })`), see
 * the README's "Choosing the driver".
 */
export const kubernetesDriverPlugin = definePlugin({
  name: PLUGIN_NAME,
  options: kubernetesDriverOptionsSchema,
  setup: () => () => undefined,
});

/** A driver for one engine. */
export function createKubernetesDriver(options: KubernetesDriverOptions = {}): KubernetesDriver {
  return new KubernetesDriver(options);
}

export default kubernetesDriverPlugin;
export { KubernetesDriver, loadKubeConfig } from "./driver.js";
export { KubernetesApiError, UnmappableSpecError, classifyApiError, type StatusCause } from "./errors.js";
export { kubernetesDriverOptionsSchema, type KubernetesDriverOptions, type ResolvedKubernetesDriverOptions } from "./options.js";
export {
  NETWORK_LABEL,
  SANDBOX_CONTAINER,
  SECCOMP_SHA_ANNOTATION,
  STDIN_GATE,
  STDIN_GATE_ANNOTATION,
  VOLUMES_INIT_CONTAINER,
  podFromSpec,
  type PodOptions,
} from "./pod-spec.js";
export { execArgv, exitCodeOfStatus, podInfo, startFailure } from "./pod-status.js";
