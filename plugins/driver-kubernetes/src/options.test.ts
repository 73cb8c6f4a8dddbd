import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { applyPlugins, Kit, silentLogger } from "@isol8/kit";
import { loadKubeConfig } from "./driver.js";
import { DRIVER_NAME, kubernetesDriver, PLUGIN_NAME } from "./index.js";
import { kubernetesDriverOptionsSchema } from "./options.js";

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("the plugin", () => {
  it('registers driver "kubernetes" in kit.drivers, owned by the plugin', () => {
    const kit = new Kit(silentLogger);
    applyPlugins(kit, [kubernetesDriver({ namespace: "sandboxes" })]);
    expect(DRIVER_NAME).toBe("kubernetes");
    expect(kit.drivers.names()).toEqual(["kubernetes"]);
    expect(kit.drivers.owner("kubernetes")).toBe(PLUGIN_NAME);
  });
});

describe("credentials", () => {
  it("inCluster: the pod's service account, whatever $KUBECONFIG says; a kubeconfig file otherwise", () => {
    const dir = mkdtempSync(join(tmpdir(), "isol8-kubeconfig-"));
    try {
      const file = join(dir, "config");
      writeFileSync(
        file,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:6443\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
      );
      vi.stubEnv("KUBECONFIG", file);
      vi.stubEnv("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc");
      vi.stubEnv("KUBERNETES_SERVICE_PORT", "443");
      expect(loadKubeConfig({ inCluster: true }).getCurrentCluster()?.server).toBe("https://kubernetes.default.svc:443");
      expect(loadKubeConfig({ inCluster: false }).getCurrentCluster()?.server).toBe("http://127.0.0.1:6443"); // the control: $KUBECONFIG
      expect(loadKubeConfig({ inCluster: false, kubeconfig: file }).getCurrentCluster()?.server).toBe("http://127.0.0.1:6443");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses kubeconfig and inCluster together, naming inCluster", () => {
    const parsed = kubernetesDriverOptionsSchema.safeParse({ kubeconfig: "/x", inCluster: true });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]).toMatchObject({ path: ["inCluster"], message: expect.stringMatching(/either kubeconfig .* or inCluster/) });
    expect(kubernetesDriverOptionsSchema.safeParse({ inCluster: true }).success).toBe(true);
  });
});
