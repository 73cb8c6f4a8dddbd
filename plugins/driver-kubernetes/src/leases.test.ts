import { describe, expect, it } from "vitest";
import type { V1Lease } from "@kubernetes/client-node";
import { leaseAlive, leaseName } from "./leases.js";
import { kubernetesDriverOptionsSchema } from "./options.js";

const ENGINE = "0b6c1f2e-7d1a-4c55-9b1e-2f7b9f3c1a00";
const NOW = Date.parse("2026-12-05T07:00:00.000Z");
/** A Lease as client-node returns it: MicroTimes are the server's strings. */
const lease = (renewedSecondsAgo: number, holder = ENGINE, durationSeconds = 30): V1Lease => ({
  metadata: { name: leaseName(ENGINE) },
  spec: {
    holderIdentity: holder,
    leaseDurationSeconds: durationSeconds,
    renewTime: new Date(NOW - renewedSecondsAgo * 1000).toISOString().replace("Z", "000Z") as never,
  },
});

describe("leaseAlive (whose pods the reaper may remove)", () => {
  it("an engine whose Lease was renewed within its duration is alive; one renewed longer ago is dead", () => {
    expect(leaseAlive(lease(29), ENGINE, NOW)).toBe(true);
    expect(leaseAlive(lease(30), ENGINE, NOW)).toBe(true);
    expect(leaseAlive(lease(31), ENGINE, NOW)).toBe(false);
    expect(leaseAlive(lease(3, ENGINE, 2), ENGINE, NOW)).toBe(false);
  });

  it("a missing Lease, one held by another identity, one without a duration or renew time is dead", () => {
    expect(leaseAlive(undefined, ENGINE, NOW)).toBe(false);
    expect(leaseAlive(lease(1, "another-engine"), ENGINE, NOW)).toBe(false);
    expect(leaseAlive({ spec: { holderIdentity: ENGINE, renewTime: new Date(NOW) as never } }, ENGINE, NOW)).toBe(false);
    expect(leaseAlive({ spec: { holderIdentity: ENGINE, leaseDurationSeconds: 30 } }, ENGINE, NOW)).toBe(false);
  });

  it("reads a renewTime given as a Date (a Lease built here) as well as the server's string", () => {
    expect(leaseAlive({ spec: { holderIdentity: ENGINE, leaseDurationSeconds: 30, renewTime: new Date(NOW - 5_000) as never } }, ENGINE, NOW)).toBe(true);
  });

  it("names the Lease after the engine, a valid object name", () => {
    expect(leaseName(ENGINE)).toBe(`isol8-engine-${ENGINE}`);
    expect(leaseName(ENGINE)).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });
});

describe("lease options", () => {
  it("defaults to a 30 s Lease renewed every 10 s in the sandbox namespace", () => {
    const options = kubernetesDriverOptionsSchema.parse({});
    expect(options).toMatchObject({ leaseDurationSeconds: 30, leaseRenewMs: 10_000 });
    expect(options.leaseNamespace).toBeUndefined();
  });

  it("refuses a renewal period over half the duration, naming leaseRenewMs, and a bad leaseNamespace", () => {
    const late = kubernetesDriverOptionsSchema.safeParse({ leaseDurationSeconds: 10, leaseRenewMs: 6_000 });
    expect(late.success).toBe(false);
    expect(late.error?.issues[0]).toMatchObject({ path: ["leaseRenewMs"], message: expect.stringMatching(/at most half of leaseDurationSeconds/) });
    expect(kubernetesDriverOptionsSchema.safeParse({ leaseDurationSeconds: 10, leaseRenewMs: 5_000 }).success).toBe(true);
    const namespace = kubernetesDriverOptionsSchema.safeParse({ leaseNamespace: "Not_A_Namespace" });
    expect(namespace.error?.issues[0]).toMatchObject({ path: ["leaseNamespace"], message: expect.stringMatching(/RFC 1123/) });
  });
});
