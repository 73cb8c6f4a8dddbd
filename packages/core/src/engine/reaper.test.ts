import { describe, expect, test } from "vitest";
import { CONTAINER_LABELS } from "@isol8/kit";
import { isOrphaned, type ReaperSelf } from "./reaper.js";

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
