import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
// The client's serializer knows every field of the OpenAPI schema and drops the others.
import { ObjectSerializer } from "@kubernetes/client-node/dist/serializer.js";
import { DaemonSet, Deployment } from "kubernetes-models/apps/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { Role, RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { Namespace, Service, ServiceAccount } from "kubernetes-models/v1";
import type { V1PodSpec } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { NETWORK_LABEL, NETWORK_LABEL_VALUES } from "./pod-spec.js";

const DIR = fileURLToPath(new URL("../../../deploy/kubernetes/", import.meta.url));
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  Namespace,
  ServiceAccount,
  Service,
  Role,
  RoleBinding,
  NetworkPolicy,
  Deployment,
  DaemonSet,
  PodDisruptionBudget,
};

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

const manifests: Manifest[] = readdirSync(DIR)
  .filter((file) => file.endsWith(".yaml"))
  .sort()
  .flatMap((file) => parseAllDocuments(readFileSync(join(DIR, file), "utf8")).map((doc) => doc.toJS() as Manifest));
const find = (kind: string, name: string) => {
  const found = manifests.filter((m) => m.kind === kind && m.metadata.name === name);
  expect(found).toHaveLength(1);
  return found[0]!;
};

describe("deploy/kubernetes", () => {
  it("holds the namespaces, RBAC, NetworkPolicy, the seccomp-profile DaemonSet and the serve Deployment, Service and PodDisruptionBudget", () => {
    expect(manifests.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual(
      [
        "Namespace/isol8",
        "Namespace/isol8-sandboxes",
        "Namespace/isol8-node-setup",
        "DaemonSet/isol8-seccomp-profile",
        "ServiceAccount/isol8-serve",
        "Role/isol8-sandboxes",
        "RoleBinding/isol8-sandboxes",
        "NetworkPolicy/isol8-sandboxes-deny-all",
        "NetworkPolicy/isol8-sandboxes-filtered",
        "NetworkPolicy/isol8-egress-proxy",
        "Deployment/isol8-serve",
        "Service/isol8-serve",
        "PodDisruptionBudget/isol8-serve",
      ].sort(),
    );
  });

  it("every manifest passes Kubernetes' OpenAPI schema, with no field it does not know", () => {
    expect(manifests).toHaveLength(13);
    for (const manifest of manifests) {
      const Model = MODELS[manifest.kind];
      expect(Model, manifest.kind).toBeDefined();
      new Model!(manifest as never).validate();
      // Wire names in, the client's names between (`from` is `_from` there), wire names out: what survives is known.
      const known = ObjectSerializer.serialize(ObjectSerializer.deserialize(manifest, `V1${manifest.kind}`), `V1${manifest.kind}`) as unknown;
      expect(JSON.parse(JSON.stringify(known)), `${manifest.kind}/${manifest.metadata.name}`).toEqual(JSON.parse(JSON.stringify(manifest)));
    }
  });

  it("the schema check can fail: a wrong type is caught, and an unknown field does not survive the round trip", () => {
    const pdb = find("PodDisruptionBudget", "isol8-serve");
    expect(() => new PodDisruptionBudget({ ...pdb, spec: { ...(pdb.spec as object), selector: "app" } } as never).validate()).toThrow(/selector/);
    const policy = find("NetworkPolicy", "isol8-egress-proxy");
    const typo = { ...policy, spec: { ...(policy.spec as object), egres: [] } };
    const known = ObjectSerializer.serialize(ObjectSerializer.deserialize(typo, "V1NetworkPolicy"), "V1NetworkPolicy") as { spec: object };
    expect(known.spec).not.toHaveProperty("egres");
    expect(known.spec).toHaveProperty("ingress");
  });

  it("the Role grants exactly pods create/get/list/watch/delete, pods/attach, pods/exec and leases create/get/update/delete, in the sandbox namespace", () => {
    const role = find("Role", "isol8-sandboxes");
    expect(role.metadata.namespace).toBe("isol8-sandboxes");
    expect(role.rules).toEqual([
      { apiGroups: [""], resources: ["pods"], verbs: ["create", "get", "list", "watch", "delete"] },
      { apiGroups: [""], resources: ["pods/attach", "pods/exec"], verbs: ["create", "get"] },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create", "get", "update", "delete"] },
    ]);
    const binding = find("RoleBinding", "isol8-sandboxes");
    expect(binding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "isol8-sandboxes" });
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "isol8-serve", namespace: "isol8" }]);
  });

  it("the NetworkPolicy denies all ingress and egress of the pods the driver labels network none", () => {
    const policy = find("NetworkPolicy", "isol8-sandboxes-deny-all");
    expect(policy.metadata.namespace).toBe("isol8-sandboxes");
    expect(policy.spec).toEqual({ podSelector: { matchLabels: { [NETWORK_LABEL]: "none" } }, policyTypes: ["Ingress", "Egress"], ingress: [], egress: [] });
  });

  it("network filtered: a filtered pod may reach the egress proxies' port 3128 and nothing else, and nothing may reach it", () => {
    const policy = find("NetworkPolicy", "isol8-sandboxes-filtered");
    expect(policy.metadata.namespace).toBe("isol8-sandboxes");
    expect(policy.spec).toEqual({
      podSelector: { matchLabels: { [NETWORK_LABEL]: NETWORK_LABEL_VALUES.proxied } },
      policyTypes: ["Ingress", "Egress"],
      ingress: [],
      egress: [{ to: [{ podSelector: { matchLabels: { [NETWORK_LABEL]: NETWORK_LABEL_VALUES.egress } } }], ports: [{ protocol: "TCP", port: 3128 }] }],
    });
  });

  it("the egress proxy: port 3128 from filtered pods, 3129 from the serve pods only; out only DNS and HTTP(S) outside the private ranges", () => {
    const policy = find("NetworkPolicy", "isol8-egress-proxy") as Manifest & {
      spec: { podSelector: unknown; policyTypes: string[]; ingress: unknown[]; egress: { to: unknown[]; ports: unknown[] }[] };
    };
    expect(policy.metadata.namespace).toBe("isol8-sandboxes");
    expect(policy.spec.podSelector).toEqual({ matchLabels: { [NETWORK_LABEL]: NETWORK_LABEL_VALUES.egress } });
    expect(policy.spec.policyTypes).toEqual(["Ingress", "Egress"]);
    const serve = find("Deployment", "isol8-serve") as Manifest & { spec: { template: { metadata: { labels: Record<string, string> } } } };
    expect(policy.spec.ingress).toEqual([
      { from: [{ podSelector: { matchLabels: { [NETWORK_LABEL]: NETWORK_LABEL_VALUES.proxied } } }], ports: [{ protocol: "TCP", port: 3128 }] },
      {
        from: [
          {
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": serve.metadata.namespace } },
            podSelector: { matchLabels: { "app.kubernetes.io/name": serve.spec.template.metadata.labels["app.kubernetes.io/name"] } },
          },
        ],
        ports: [{ protocol: "TCP", port: 3129 }],
      },
    ]);
    expect(policy.spec.egress).toHaveLength(2);
    expect(policy.spec.egress[0]!.ports).toEqual([
      { protocol: "UDP", port: 53 },
      { protocol: "TCP", port: 53 },
    ]);
    expect(policy.spec.egress[1]).toEqual({
      to: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"] } }],
      ports: [
        { protocol: "TCP", port: 80 },
        { protocol: "TCP", port: 443 },
      ],
    });
  });

  it("the serve Deployment runs as the service account, hardened, ready on /ready, live on /health; Service (ClientIP affinity) and PDB select it", () => {
    const deployment = find("Deployment", "isol8-serve") as Manifest & {
      spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: V1PodSpec } };
    };
    const pod = deployment.spec.template.spec;
    expect(pod.serviceAccountName).toBe("isol8-serve");
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(pod.containers).toHaveLength(1);
    const serve = pod.containers[0]!;
    expect(serve.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    expect(serve.readinessProbe?.httpGet).toEqual({ path: "/ready", port: "http" });
    expect(serve.livenessProbe?.httpGet).toEqual({ path: "/health", port: "http" });
    expect(serve.ports).toContainEqual({ name: "http", containerPort: 3000, protocol: "TCP" });
    const labels = deployment.spec.template.metadata.labels;
    expect(labels).toMatchObject(deployment.spec.selector.matchLabels);
    const service = find("Service", "isol8-serve").spec as { selector: Record<string, string>; sessionAffinity?: string };
    expect(labels).toMatchObject(service.selector);
    expect(service.sessionAffinity).toBe("ClientIP");
    const pdb = find("PodDisruptionBudget", "isol8-serve").spec as { minAvailable: number; selector: { matchLabels: Record<string, string> } };
    expect(labels).toMatchObject(pdb.selector.matchLabels);
    expect(pdb.minAvailable).toBe(1);
  });

  it("the seccomp DaemonSet writes only the profile from its ConfigMap into the kubelet's seccomp directory, as isol8/strict.json", () => {
    const daemonSet = find("DaemonSet", "isol8-seccomp-profile") as Manifest & { spec: { template: { spec: V1PodSpec } } };
    const pod = daemonSet.spec.template.spec;
    expect(pod.volumes).toEqual([
      { name: "profile", configMap: { name: "isol8-seccomp-profile" } },
      { name: "host-seccomp", hostPath: { path: "/var/lib/kubelet/seccomp", type: "DirectoryOrCreate" } },
    ]);
    expect(pod.containers).toHaveLength(1);
    const install = pod.containers[0]!;
    expect(install.command?.at(-1)).toContain("mv /host-seccomp/isol8/.strict.json.new /host-seccomp/isol8/strict.json");
    expect(install.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    expect(pod.automountServiceAccountToken).toBe(false);
    // hostPath is refused by Pod Security baseline: the DaemonSet is not in the sandboxes' namespace.
    expect(daemonSet.metadata.namespace).toBe("isol8-node-setup");
  });
});
