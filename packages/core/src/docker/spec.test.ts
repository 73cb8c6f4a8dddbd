import { describe, expect, it } from "vitest";
import { engineOptionsSchema, NotSupportedError, type SandboxSpec } from "@isol8/kit";
import { executorMainProcess } from "../engine/executor-launcher.js";
import { baseSandboxSpec } from "../engine/sandbox-spec.js";
import { dockerCreateOptions } from "./spec.js";

const spec: SandboxSpec = baseSandboxSpec(engineOptionsSchema.parse({}), "isol8/python:latest", 1_500_000_001, executorMainProcess(1_500_000_001));

describe("dockerCreateOptions: the network", () => {
  it("maps none, host and a named network to Docker's NetworkMode", () => {
    expect(dockerCreateOptions({ ...spec, network: { kind: "none" } }).HostConfig?.NetworkMode).toBe("none");
    expect(dockerCreateOptions({ ...spec, network: { kind: "host" } }).HostConfig?.NetworkMode).toBe("host");
    expect(dockerCreateOptions({ ...spec, network: { kind: "network", name: "isol8-x-sandbox-1" } }).HostConfig?.NetworkMode).toBe("isol8-x-sandbox-1");
  });

  it("refuses the policy drivers' kinds (proxied, egress), naming the kind: Docker keeps a filtered sandbox to its proxy with networks", () => {
    for (const kind of ["proxied", "egress"] as const) {
      expect(() => dockerCreateOptions({ ...spec, network: { kind } })).toThrow(NotSupportedError);
      expect(() => dockerCreateOptions({ ...spec, network: { kind } })).toThrow(`network kind "${kind}"`);
    }
  });
});

describe("dockerCreateOptions: removeWhenDetached", () => {
  it("an attached sandbox that ends with its connection: stdin once (closed when the attachment ends) and AutoRemove", () => {
    const options = dockerCreateOptions({ ...spec, removeWhenDetached: true });
    expect(options.StdinOnce).toBe(true);
    expect(options.HostConfig?.AutoRemove).toBe(true);
  });

  it("without it (the default): stdin stays open across attachments and the engine removes the container", () => {
    const options = dockerCreateOptions(spec);
    expect(options.OpenStdin).toBe(true);
    expect(options.StdinOnce).toBe(false);
    expect(options.HostConfig?.AutoRemove).toBeUndefined();
  });
});
