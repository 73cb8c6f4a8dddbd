import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Isol8Error } from "@isol8/kit";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loadCustomProfile, validateProfile } from "./custom.js";

const GOOD = {
  defaultAction: "SCMP_ACT_ALLOW",
  architectures: ["SCMP_ARCH_X86_64"],
  syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 13 }],
};

/** The error a call throws, checked to be an InvalidOptionsError. */
async function failure(promise: Promise<unknown>): Promise<Isol8Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(Isol8Error.isInstance(error), "expected an Isol8Error").toBe(true);
  expect((error as Isol8Error).code).toBe("ISOL8_ERR_INVALID_OPTIONS");
  expect((error as Error).name).toBe("InvalidOptionsError");
  return error as Isol8Error;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "isol8-seccomp-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("validateProfile", () => {
  test("accepts Docker's format: names, errnoRet, args, comments, includes, archMap", () => {
    expect(validateProfile(GOOD)).toEqual(GOOD);
    const full = {
      defaultAction: "SCMP_ACT_ERRNO",
      defaultErrnoRet: 1,
      archMap: [{ architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86"] }],
      syscalls: [
        { names: ["read", "write"], action: "SCMP_ACT_ALLOW", comment: "io" },
        { name: "clone", action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 2114060288, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }] },
        { names: ["ptrace"], action: "SCMP_ACT_ALLOW", includes: { minKernel: "4.8", caps: ["CAP_SYS_PTRACE"] }, excludes: { arches: ["s390x"] } },
      ],
    };
    expect(validateProfile(full)).toEqual(full);
  });

  test.each([
    [{ ...GOOD, defaultAction: "ALLOW" }, /profile\.defaultAction: expected one of SCMP_ACT_KILL/],
    [{ ...GOOD, defaultAction: "SCMP_ACT_NOTIFY" }, /profile\.defaultAction: SCMP_ACT_NOTIFY needs a user-space listener/],
    [{ defaultAction: "SCMP_ACT_ERRNO" }, /profile\.syscalls: .*expected array/i],
    [{ ...GOOD, architectures: ["x86_64"] }, /profile\.architectures\[0\]/],
    [{ ...GOOD, syscalls: [{ names: [], action: "SCMP_ACT_ALLOW" }] }, /profile\.syscalls\[0\]\.names/],
    [{ ...GOOD, syscalls: [{ names: ["Read"], action: "SCMP_ACT_ALLOW" }] }, /profile\.syscalls\[0\]\.names\[0\]: a syscall name/],
    [{ ...GOOD, syscalls: [{ action: "SCMP_ACT_ALLOW" }] }, /profile\.syscalls\[0\]: a rule needs "names"/],
    [{ ...GOOD, syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", errnoRet: 1 }] }, /profile\.syscalls\[0\]\.errnoRet: errnoRet is only valid with/],
    [
      { ...GOOD, syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", args: [{ index: 6, value: 0, op: "SCMP_CMP_EQ" }] }] },
      /profile\.syscalls\[0\]\.args\[0\]\.index/,
    ],
    [{ ...GOOD, syscalls: [{ names: ["read"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 0, op: "EQ" }] }] }, /profile\.syscalls\[0\]\.args\[0\]\.op/],
    [{ ...GOOD, syscall: [] }, /profile: Unrecognized key: "syscall"/],
    [{ ...GOOD, archMap: [{ architecture: "SCMP_ARCH_X86_64" }] }, /profile\.archMap: give either "architectures" or "archMap"/],
  ])("rejects a bad profile, naming the field (%#)", (profile, message) => {
    let error: unknown;
    try {
      validateProfile(profile, "the inline seccomp profile");
    } catch (e) {
      error = e;
    }
    expect(Isol8Error.isInstance(error)).toBe(true);
    expect((error as Isol8Error).code).toBe("ISOL8_ERR_INVALID_OPTIONS");
    expect((error as Error).message).toMatch(/^security\.seccompProfile: the inline seccomp profile is not a valid Docker seccomp profile: /);
    expect((error as Error).message).toMatch(message);
  });
});

describe("loadCustomProfile", () => {
  test("reads and validates a JSON file; a relative path resolves against the working directory", async () => {
    await writeFile(join(dir, "good.json"), JSON.stringify(GOOD));
    expect(await loadCustomProfile(join(dir, "good.json"))).toEqual(GOOD);
    expect(await loadCustomProfile("good.json", dir)).toEqual(GOOD);
  });

  test("takes an inline object", async () => {
    expect(await loadCustomProfile(GOOD)).toEqual(GOOD);
  });

  test("a missing file is an InvalidOptionsError naming the file", async () => {
    const error = await failure(loadCustomProfile(join(dir, "nope.json")));
    expect(error.message).toBe(`security.seccompProfile: cannot read the seccomp profile file ${join(dir, "nope.json")}: no such file.`);
  });

  test("a directory, bad JSON and a bad profile in a file each fail naming the file", async () => {
    expect((await failure(loadCustomProfile(dir))).message).toContain(`${dir}: it is a directory`);
    await writeFile(join(dir, "broken.json"), "{ defaultAction: ");
    expect((await failure(loadCustomProfile(join(dir, "broken.json")))).message).toMatch(/broken\.json is not valid JSON/);
    await writeFile(join(dir, "bad.json"), JSON.stringify({ ...GOOD, defaultAction: "SCMP_ACT_NOPE" }));
    const bad = await failure(loadCustomProfile(join(dir, "bad.json")));
    expect(bad.message).toContain(`the seccomp profile file ${join(dir, "bad.json")} is not a valid Docker seccomp profile: profile.defaultAction:`);
  });

  test("no profile, an empty path or another type is a clear error", async () => {
    expect((await failure(loadCustomProfile(undefined))).message).toMatch(/seccomp mode "custom" needs a profile/);
    expect((await failure(loadCustomProfile(" "))).message).toMatch(/got an empty string/);
    expect((await failure(loadCustomProfile(42))).message).toMatch(/got number/);
    expect((await failure(loadCustomProfile([GOOD]))).message).toMatch(/got an array/);
  });
});
