import { describe, expect, test } from "vitest";
import { CONTAINER_LABELS } from "@isol8/kit";
import { isOrphaned, ownershipJudge, type ReaperSelf } from "./reaper.js";

const self: ReaperSelf = { host: "node-a", pidNamespace: "4026531836", alive: (pid) => pid === 100 };
const owner = (pid: number, extra: Record<string, string> = {}) => ({
  [CONTAINER_LABELS.managed]: "true",
  [CONTAINER_LABELS.ownerHost]: "node-a",
  [CONTAINER_LABELS.ownerPid]: String(pid),
  ...extra,
});

describe("isOrphaned (the startup reaper's judgement)", () => {
  test("a sandbox of this host and PID namespace whose owner pid is dead is an orphan; a live owner's is not", () => {
    expect(isOrphaned(owner(200, { [CONTAINER_LABELS.ownerPidNamespace]: "4026531836" }), self)).toBe(true);
    expect(isOrphaned(owner(100, { [CONTAINER_LABELS.ownerPidNamespace]: "4026531836" }), self)).toBe(false);
  });

  test("an owner in another PID namespace with the same host name is never judged (its pid means nothing here)", () => {
    expect(isOrphaned(owner(200, { [CONTAINER_LABELS.ownerPidNamespace]: "4026532000" }), self)).toBe(false);
  });

  test("an owner labelled before the namespace label existed is judged by host and pid, as before", () => {
    expect(isOrphaned(owner(200), self)).toBe(true);
    expect(isOrphaned(owner(100), self)).toBe(false);
  });

  test("another host's sandboxes, persist: true ones and unlabelled ones are left alone", () => {
    expect(isOrphaned({ ...owner(200), [CONTAINER_LABELS.ownerHost]: "node-b" }, self)).toBe(false);
    expect(isOrphaned(owner(200, { [CONTAINER_LABELS.persist]: "true" }), self)).toBe(false);
    expect(isOrphaned(undefined, self)).toBe(false);
  });
});

describe("ownershipJudge (the reaper's judgement on a driver with its own ownership, e.g. Kubernetes Leases)", () => {
  const engine = (id: string, extra: Record<string, string> = {}) => ({ [CONTAINER_LABELS.managed]: "true", [CONTAINER_LABELS.engine]: id, ...extra });
  const ownership = (alive: string[]) => {
    const asked: string[] = [];
    return {
      asked,
      claim: async () => undefined,
      release: async () => undefined,
      alive: async (id: string) => (asked.push(id), alive.includes(id)),
    };
  };

  test("sandboxes of an engine whose claim is not alive are orphans; a live engine's are not; each engine is asked once", async () => {
    const owners = ownership(["live"]);
    const labels = [engine("dead"), engine("dead"), engine("live")];
    const { orphaned, dead } = await ownershipJudge(owners, "self", labels);
    expect(labels.map(orphaned)).toEqual([true, true, false]);
    expect([...dead]).toEqual(["dead"]);
    expect(owners.asked.sort()).toEqual(["dead", "live"]);
  });

  test("this engine's own sandboxes, persist: true ones and ones without an engine label are never judged", async () => {
    const owners = ownership([]);
    const labels = [engine("self"), engine("kept", { [CONTAINER_LABELS.persist]: "true" }), { [CONTAINER_LABELS.managed]: "true" }, undefined];
    const { orphaned, dead } = await ownershipJudge(owners, "self", labels);
    expect(labels.map(orphaned)).toEqual([false, false, false, false]);
    expect(dead.size).toBe(0);
    expect(owners.asked).toEqual([]);
  });

  test("judges by the claim alone: a dead engine's sandbox whose owner labels name this host and a live pid is an orphan", async () => {
    const listed = { ...owner(100), [CONTAINER_LABELS.engine]: "gone" };
    expect(isOrphaned(listed, self)).toBe(false); // what the host/pid judgement would say
    expect((await ownershipJudge(ownership([]), "self", [listed])).orphaned(listed)).toBe(true);
  });
});
