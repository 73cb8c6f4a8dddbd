import { definePlugin } from "@isol8/kit";
import { KubernetesDriver } from "./driver.js";
import { kubernetesDriverOptionsSchema, type ResolvedKubernetesDriverOptions } from "./options.js";

export const PLUGIN_NAME = "isol8:driver-kubernetes";

/** What the plugin offers its host: a driver made from the plugin's options (the kubeconfig is read then, not before). */
export interface KubernetesDriverApi {
  readonly options: ResolvedKubernetesDriverOptions;
  createDriver(): KubernetesDriver;
}

/** The name engines choose the driver by (`driver: "kubernetes"`). */
export const DRIVER_NAME = "kubernetes";

/**
 * The Kubernetes sandbox driver as a plugin: registers driver "kubernetes" (`kit.drivers`), which
 * an engine with `driver: "kubernetes"` makes from these options when it is built (the
 * kubeconfig is read then). `api.createDriver()` makes one without an engine (cleanup, tests).
 */
export const kubernetesDriver = definePlugin({
  name: PLUGIN_NAME,
  options: kubernetesDriverOptionsSchema,
  setup: (options) => ({
    apply: (kit) => kit.drivers.register(DRIVER_NAME, () => new KubernetesDriver(options)),
    api: { options, createDriver: () => new KubernetesDriver(options) } satisfies KubernetesDriverApi,
  }),
});

export default kubernetesDriver;
export { KubernetesDriver, loadKubeConfig } from "./driver.js";
export { KubernetesApiError, UnmappableSpecError, classifyApiError, type StatusCause } from "./errors.js";
export { EngineLeases, leaseAlive, leaseName, type LeaseOptions } from "./leases.js";
export { kubernetesDriverOptionsSchema, type KubernetesDriverOptions, type ResolvedKubernetesDriverOptions } from "./options.js";
export {
  NETWORK_LABEL,
  NETWORK_LABEL_VALUES,
  SANDBOX_CONTAINER,
  SECCOMP_SHA_ANNOTATION,
  STDIN_GATE,
  STDIN_GATE_ANNOTATION,
  VOLUMES_INIT_CONTAINER,
  podFromSpec,
  type PodOptions,
} from "./pod-spec.js";
export { execArgv, exitCodeOfStatus, podInfo, startFailure } from "./pod-status.js";
export type { V1Container, V1ContainerStatus, V1Pod } from "@kubernetes/client-node";
