import * as z from "zod";
import { readImagesFile } from "./images-file.js";

/** Kubernetes label values: at most 63 characters, alphanumerics at both ends, `-_.` between. */
export const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const toleration = z.strictObject({
  key: z.string().optional(),
  operator: z.enum(["Exists", "Equal"]).optional(),
  value: z.string().optional(),
  effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]).optional(),
  tolerationSeconds: z.number().int().optional(),
});

/** One runtime image as the cluster pulls it (what `isol8 setup --push` would write). */
const pushedImage = z.strictObject({
  /** What the kubelet pulls, by digest: `registry.example/isol8/python@sha256:…`. */
  reference: z.string().min(1),
  /** The image's labels (the executor's protocol version among them): the API server cannot read them. */
  labels: z.record(z.string(), z.string()).default({}),
});

const driverOptionsFields = z.strictObject({
  /** Namespace the sandbox pods live in (the Role of deploy/kubernetes grants exactly what the driver uses there). */
  namespace: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "expected a namespace name (RFC 1123 label)")
    .default("isol8-sandboxes"),
  /** A kubeconfig file; absent: $KUBECONFIG, else ~/.kube/config, else in-cluster credentials (the client's default lookup). */
  kubeconfig: z.string().min(1).optional(),
  /** Only the pod's service-account credentials (`isol8 serve` in a cluster), whatever $KUBECONFIG or ~/.kube says. */
  inCluster: z.boolean().default(false),
  /**
   * Local image name (as the engine names it, e.g. `isol8/python:5f03bcec2a8b`) → what the cluster
   * pulls; or the path of the file `isol8 setup --push` wrote (`"isol8-images.json"`, relative to
   * the working directory), read when the options are validated: every runtime image by digest.
   */
  images: z
    .union([z.string().min(1), z.record(z.string(), pushedImage)])
    .default({})
    .transform((value, ctx) => {
      if (typeof value !== "string") return value;
      try {
        return readImagesFile(value);
      } catch (error) {
        ctx.addIssue({ code: "custom", message: (error as Error).message });
        return z.NEVER;
      }
    }),
  /** A registry prefix for images not listed in `images` (`registry.example/` + `isol8/python:latest`). */
  imageRegistry: z.string().min(1).optional(),
  imagePullPolicy: z.enum(["Always", "IfNotPresent", "Never"]).default("IfNotPresent"),
  /** RuntimeClass of every sandbox pod (gVisor, Kata) unless the spec names an OCI runtime. */
  runtimeClassName: z.string().min(1).optional(),
  /** The RuntimeClasses the cluster offers (a namespaced Role cannot list them): what `ociRuntime` may name. */
  runtimeClasses: z.array(z.string().min(1)).default([]),
  nodeSelector: z.record(z.string(), z.string()).default({}),
  tolerations: z.array(toleration).default([]),
  /** The pods' service account (its token is never mounted). */
  serviceAccountName: z.string().min(1).optional(),
  priorityClassName: z.string().min(1).optional(),
  /** `hostUsers: false`: the pod in its own user namespace (Kubernetes ≥ 1.30 with a runtime that supports it). */
  userNamespaces: z.boolean().default(false),
  /**
   * The kubelet's `podPidsLimit` on the nodes sandboxes run on: a pod spec cannot carry a PID
   * limit, so the driver refuses a spec whose `pidsLimit` is lower than what the nodes enforce.
   */
  nodePodPidsLimit: z.number().int().positive().optional(),
  /**
   * Where isol8's strict seccomp profile sits on the nodes, relative to the kubelet's seccomp
   * directory (`isol8/strict.json`, put there by the DaemonSet of deploy/kubernetes): a spec
   * with an inline profile maps to `Localhost` with this path, and is refused without it.
   */
  seccompLocalhostProfile: z.string().min(1).optional(),
  /** What Kubernetes cannot express, accepted knowingly (each is refused otherwise, naming the spec field). */
  acceptWeaker: z
    .strictObject({
      /** emptyDir volumes cannot be mounted noexec: `/tmp` and `/run/isol8` allow executing files. */
      tmpfsExec: z.boolean().default(false),
      /** The kubelet keeps every container's stdout in node log files (the executor's frames, so program output). */
      nodeLogs: z.boolean().default(false),
    })
    .default({ tmpfsExec: false, nodeLogs: false }),
  /** How long a pod may take to be scheduled, pulled and running. */
  startTimeoutMs: z.number().int().positive().default(120_000),
  /** How often a starting pod's status is read. */
  pollIntervalMs: z.number().int().positive().default(250),
  /** Where each engine's Lease (coordination.k8s.io/v1) lives; the sandbox namespace when absent. */
  leaseNamespace: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "expected a namespace name (RFC 1123 label)")
    .optional(),
  /** An engine whose Lease was not renewed for this long is dead: another engine's start reaps its pods. */
  leaseDurationSeconds: z.number().int().positive().default(30),
  /** How often a running engine renews its Lease (well under leaseDurationSeconds: a late renewal must not look like death). */
  leaseRenewMs: z.number().int().positive().default(10_000),
});

export const kubernetesDriverOptionsSchema = driverOptionsFields
  .refine((options) => !(options.inCluster && options.kubeconfig), {
    path: ["inCluster"],
    message: "expected either kubeconfig (a file) or inCluster: true (the pod's service account), not both",
  })
  .refine((options) => options.leaseRenewMs * 2 <= options.leaseDurationSeconds * 1000, {
    path: ["leaseRenewMs"],
    message: "expected leaseRenewMs at most half of leaseDurationSeconds (in ms): a Lease must be renewed at least twice within its duration",
  });

export type KubernetesDriverOptions = z.input<typeof kubernetesDriverOptionsSchema>;
export type ResolvedKubernetesDriverOptions = z.output<typeof kubernetesDriverOptionsSchema>;
