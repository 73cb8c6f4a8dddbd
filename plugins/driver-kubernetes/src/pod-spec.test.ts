import { baseSandboxSpec, executorMainProcess } from "@isol8/core";
import { engineOptionsSchema, type SandboxSpec } from "@isol8/kit";
import type { V1Pod } from "@kubernetes/client-node";
// The client's serializer knows every field of the OpenAPI schema and drops the others.
import { ObjectSerializer } from "@kubernetes/client-node/dist/serializer.js";
import { Pod } from "kubernetes-models/v1";
import { describe, expect, it } from "vitest";
import { UnmappableSpecError } from "./errors.js";
import { kubernetesDriverOptionsSchema, type KubernetesDriverOptions } from "./options.js";
import { NETWORK_LABEL, NETWORK_LABEL_VALUES, podFromSpec, SANDBOX_CONTAINER, STDIN_GATE, STDIN_GATE_ANNOTATION, VOLUMES_INIT_CONTAINER } from "./pod-spec.js";

const UID = 1_234_567_890;
/** The spec the engine builds for an executor sandbox (its own base spec, not a copy of it). */
const engineSpec: SandboxSpec = {
  ...baseSandboxSpec(engineOptionsSchema.parse({}), "isol8/python:latest", UID, executorMainProcess(UID)),
  labels: { "isol8.managed": "true", "isol8.engine": "0b6f6c9e-5d0e-4a7b-9f0e-1c2d3e4f5a6b", "isol8.runtime": "python", "isol8.uid": String(UID) },
};
const driverOptions: KubernetesDriverOptions = {
  nodePodPidsLimit: 64,
  acceptWeaker: { tmpfsExec: true, nodeLogs: true },
  runtimeClassName: "gvisor",
  runtimeClasses: ["gvisor"],
  images: { "isol8/python:latest": { reference: "registry.example/isol8/python@sha256:" + "a".repeat(64), labels: {} } },
};
const options = (extra: KubernetesDriverOptions = {}) => kubernetesDriverOptionsSchema.parse({ ...driverOptions, ...extra });

/** Validates against Kubernetes' OpenAPI schema, and finds fields the schema does not know (the validator allows them). */
function validatePod(pod: V1Pod): void {
  new Pod(pod as never).validate();
  const known = ObjectSerializer.serialize(pod, "V1Pod") as unknown;
  expect(JSON.parse(JSON.stringify(known))).toEqual(JSON.parse(JSON.stringify(pod)));
}

describe("podFromSpec", () => {
  const pod = podFromSpec(engineSpec, options());
  const spec = pod.spec!;
  const sandbox = spec.containers.find((c) => c.name === SANDBOX_CONTAINER)!;
  const init = spec.initContainers?.find((c) => c.name === VOLUMES_INIT_CONTAINER);

  it("produces a Pod that Kubernetes' OpenAPI schema accepts, with no field it does not know", () => {
    validatePod(pod);
    expect(spec.containers).toHaveLength(1);
  });

  it("the schema check can fail: a wrong type and an unknown field are caught", () => {
    expect(() => new Pod({ ...pod, spec: { ...spec, terminationGracePeriodSeconds: "0" } } as never).validate()).toThrow(/terminationGracePeriodSeconds/);
    const typo = { ...pod, spec: { ...spec, automountServiceAcountToken: false } } as unknown as V1Pod;
    expect(() => validatePod(typo)).toThrow();
  });

  it("runs the executor as uid 0 holding only SETUID, SETGID and SETPCAP, as on Docker", () => {
    expect(sandbox.securityContext).toMatchObject({ runAsUser: 0, runAsGroup: 0, runAsNonRoot: false, privileged: false });
    expect(sandbox.securityContext?.capabilities).toEqual({ drop: ["ALL"], add: ["SETUID", "SETGID", "SETPCAP"] });
    expect(sandbox.env).toContainEqual({ name: "ISOL8_SANDBOX_UID", value: String(UID) });
  });

  it("sets runAsNonRoot for a non-root main process", () => {
    const nonRoot = podFromSpec({ ...engineSpec, user: "1000:1000", capabilities: [] }, options()).spec!.containers[0]!.securityContext!;
    expect(nonRoot).toMatchObject({ runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true });
    expect(nonRoot.capabilities).toEqual({ drop: ["ALL"] });
  });

  it("forbids privilege escalation and keeps the root filesystem read-only", () => {
    expect(sandbox.securityContext?.allowPrivilegeEscalation).toBe(false);
    expect(sandbox.securityContext?.readOnlyRootFilesystem).toBe(true);
    expect(init?.securityContext?.allowPrivilegeEscalation).toBe(false);
    expect(init?.securityContext?.readOnlyRootFilesystem).toBe(true);
  });

  it("mounts memory-backed emptyDirs with the spec's sizes at /sandbox, /tmp and /run/isol8", () => {
    expect(spec.volumes).toHaveLength(3);
    const byPath = Object.fromEntries(sandbox.volumeMounts!.map((m) => [m.mountPath, spec.volumes!.find((v) => v.name === m.name)!]));
    expect(Object.keys(byPath).sort()).toEqual(["/run/isol8", "/sandbox", "/tmp"]);
    expect(byPath["/sandbox"]!.emptyDir).toEqual({ medium: "Memory", sizeLimit: String(engineSpec.tmpfs["/sandbox"]!.sizeBytes) });
    expect(byPath["/tmp"]!.emptyDir).toEqual({ medium: "Memory", sizeLimit: String(engineSpec.tmpfs["/tmp"]!.sizeBytes) });
    expect(byPath["/run/isol8"]!.emptyDir).toEqual({ medium: "Memory", sizeLimit: String(1024 * 1024) });
  });

  it("gives the volumes the spec's owner and mode in an init container holding CAP_CHOWN alone", () => {
    expect(init?.securityContext?.capabilities).toEqual({ drop: ["ALL"], add: ["CHOWN"] });
    expect(init?.volumeMounts).toEqual(sandbox.volumeMounts);
    const script = init!.command!.at(-1)!;
    expect(script).toContain(`chmod 0700 '/sandbox'`);
    expect(script).toContain(`chown ${UID}:${UID} '/sandbox'`);
    expect(script).toContain(`chmod 1777 '/tmp'`);
    expect(script).toContain(`chmod 0755 '/run/isol8'`);
    expect(script.indexOf("chmod 0700 '/sandbox'")).toBeLessThan(script.indexOf(`chown ${UID}`));
  });

  it("sets requests equal to limits (Guaranteed QoS) from the spec's CPU and memory", () => {
    const limits = { cpu: `${Math.round(engineSpec.cpus * 1000)}m`, memory: String(engineSpec.memoryBytes) };
    expect(sandbox.resources).toEqual({ limits, requests: limits });
    expect(init?.resources).toEqual({ limits, requests: limits });
  });

  it("uses seccomp RuntimeDefault for the default policy, Localhost for an inline profile", () => {
    expect(spec.securityContext?.seccompProfile).toEqual({ type: "RuntimeDefault" });
    expect(sandbox.securityContext?.seccompProfile).toEqual({ type: "RuntimeDefault" });
    const strict = podFromSpec({ ...engineSpec, seccomp: { kind: "profile", json: "{}" } }, options({ seccompLocalhostProfile: "isol8/strict.json" }), {
      seccompSha256: "f".repeat(64),
    });
    validatePod(strict);
    expect(strict.spec!.containers[0]!.securityContext?.seccompProfile).toEqual({ type: "Localhost", localhostProfile: "isol8/strict.json" });
    expect(strict.metadata?.annotations?.["isol8.dev/seccomp-sha256"]).toBe("f".repeat(64));
  });

  it("mounts no service-account token, injects no service links, shares no host namespace, stops at once", () => {
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.enableServiceLinks).toBe(false);
    expect(spec.hostNetwork).toBe(false);
    expect(spec.hostPID).toBe(false);
    expect(spec.hostIPC).toBe(false);
    expect(spec.terminationGracePeriodSeconds).toBe(0);
    expect(spec.restartPolicy).toBe("Never");
  });

  it("uses the RuntimeClass, nodeSelector, tolerations and service account of the options", () => {
    expect(spec.runtimeClassName).toBe("gvisor");
    const placed = podFromSpec(
      engineSpec,
      options({
        nodeSelector: { pool: "sandboxes" },
        tolerations: [{ key: "sandbox", operator: "Exists", effect: "NoSchedule" }],
        serviceAccountName: "isol8-sandbox",
        userNamespaces: true,
      }),
    );
    validatePod(placed);
    expect(placed.spec).toMatchObject({ nodeSelector: { pool: "sandboxes" }, serviceAccountName: "isol8-sandbox", hostUsers: false });
    expect(placed.spec!.tolerations).toEqual([{ key: "sandbox", operator: "Exists", effect: "NoSchedule" }]);
  });

  it("carries isol8's labels and the deny-all network label, and names the image by the pushed digest", () => {
    expect(pod.metadata?.labels).toEqual({ ...engineSpec.labels, [NETWORK_LABEL]: "none" });
    expect(sandbox.image).toBe((driverOptions.images as Record<string, { reference: string }>)["isol8/python:latest"]!.reference);
    expect(pod.metadata?.generateName).toBe("isol8-");
  });

  it("network proxied and egress (the filtered mode's sandbox and proxy) become the labels the NetworkPolicies select, and still validate", () => {
    const proxied = podFromSpec({ ...engineSpec, network: { kind: "proxied" } }, kubernetesDriverOptionsSchema.parse(driverOptions));
    const egress = podFromSpec({ ...engineSpec, network: { kind: "egress" } }, kubernetesDriverOptionsSchema.parse(driverOptions));
    validatePod(proxied);
    validatePod(egress);
    expect(proxied.metadata?.labels?.[NETWORK_LABEL]).toBe(NETWORK_LABEL_VALUES.proxied);
    expect(NETWORK_LABEL_VALUES.proxied).toBe("filtered");
    expect(egress.metadata?.labels?.[NETWORK_LABEL]).toBe(NETWORK_LABEL_VALUES.egress);
    expect(NETWORK_LABEL_VALUES.egress).toBe("egress-proxy");
    // Nothing else differs: the network is the label alone (no host network, no other field).
    expect({ ...proxied, metadata: { ...proxied.metadata, labels: {} } }).toEqual({ ...pod, metadata: { ...pod.metadata, labels: {} } });
    expect(egress.spec?.hostNetwork).toBe(false);
  });

  it("starts the executor behind the stdin gate, with stdin open and no TTY", () => {
    expect(sandbox.command).toEqual([...STDIN_GATE, ...engineSpec.command]);
    expect(sandbox).toMatchObject({ stdin: true, stdinOnce: false, tty: false, workingDir: "/sandbox" });
    expect(pod.metadata?.annotations?.[STDIN_GATE_ANNOTATION]).toBe("true");
    expect(spec.shareProcessNamespace).toBe(true);
  });
});

describe("podFromSpec refuses what it cannot map, naming the field", () => {
  const refused = (spec: SandboxSpec, extra: KubernetesDriverOptions = {}, base: KubernetesDriverOptions = driverOptions) => {
    try {
      podFromSpec(spec, kubernetesDriverOptionsSchema.parse({ ...base, ...extra }));
    } catch (error) {
      expect(error).toBeInstanceOf(UnmappableSpecError);
      expect((error as UnmappableSpecError).code).toBe("ISOL8_ERR_NOT_SUPPORTED");
      return (error as UnmappableSpecError).field;
    }
    throw new Error("podFromSpec accepted the spec");
  };

  it("network host and named networks", () => {
    expect(refused({ ...engineSpec, network: { kind: "host" } })).toBe("network");
    expect(refused({ ...engineSpec, network: { kind: "network", name: "isol8-filtered-1" } })).toBe("network");
  });

  it("an inline seccomp profile without a Localhost path", () => {
    expect(refused({ ...engineSpec, seccomp: { kind: "profile", json: "{}" } })).toBe("seccomp");
  });

  it("a PID limit the nodes do not enforce", () => {
    expect(refused(engineSpec, {}, { ...driverOptions, nodePodPidsLimit: undefined })).toBe("pidsLimit");
    expect(refused({ ...engineSpec, pidsLimit: 32 })).toBe("pidsLimit");
  });

  it("noexec memory mounts and unstored logs unless accepted", () => {
    expect(refused(engineSpec, { acceptWeaker: { tmpfsExec: false, nodeLogs: true } })).toBe('tmpfs["/tmp"].exec');
    expect(refused(engineSpec, { acceptWeaker: { tmpfsExec: true, nodeLogs: false } })).toBe("logs");
  });

  it("a user name, a restart count, an unknown OCI runtime and an invalid label value", () => {
    expect(refused({ ...engineSpec, user: "sandbox" })).toBe("user");
    expect(refused({ ...engineSpec, restartOnFailure: 3 })).toBe("restartOnFailure");
    expect(refused({ ...engineSpec, ociRuntime: "kata" })).toBe("ociRuntime");
    expect(refused({ ...engineSpec, labels: { ...engineSpec.labels, "isol8.session": "a b" } })).toBe('labels["isol8.session"]');
    const quoted = "/data'; chmod 777 /etc; '";
    expect(refused({ ...engineSpec, tmpfs: { ...engineSpec.tmpfs, [quoted]: { sizeBytes: 1024, mode: 0o700, exec: true } } })).toBe(`tmpfs["${quoted}"]`);
  });

  it("positive control: the same spec with every refusal lifted maps", () => {
    expect(() => podFromSpec({ ...engineSpec, ociRuntime: "gvisor" }, options())).not.toThrow();
  });
});
