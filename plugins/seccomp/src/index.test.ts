import { Isol8Error, Kit, applyPlugins, resolvePlugins, type Logger, type SandboxSpec, type SpecContext } from "@isol8/kit";
import { describe, expect, test, vi } from "vitest";
import { seccomp } from "./index.js";

function assemble(plugin = seccomp()) {
  const warn = vi.fn();
  const log: Logger = { debug() {}, info() {}, warn, error() {} };
  const kit = new Kit(log);
  applyPlugins(kit, resolvePlugins([plugin]));
  kit.seal();
  return { kit, warn };
}

const base: SandboxSpec = {
  image: "x",
  command: ["sleep", "infinity"],
  user: "1000:1000",
  workdir: "/sandbox",
  env: {},
  labels: { "isol8.managed": "true" },
  attachStdio: false,
  init: true,
  readonlyRootFs: true,
  tmpfs: { "/tmp": { sizeBytes: 1024, mode: 0o1777, exec: false } },
  capabilities: [],
  noNewPrivileges: true,
  memoryBytes: 512 * 1024 * 1024,
  cpus: 1,
  pidsLimit: 64,
  seccomp: { kind: "default" },
  network: { kind: "none" },
  logs: "none",
};
/** base as it was before any shaping: shaping must not mutate it. */
const pristine = structuredClone(base);

function context(engineId = "engine-1", security: Record<string, unknown> = {}): SpecContext {
  return { runtime: "bash", image: "x", engineId, options: { security } as unknown as SpecContext["options"] };
}

/** The profile a spec's seccomp policy carries, parsed; fails the test when the policy is not a profile. */
function profileOf(spec: SandboxSpec): unknown {
  expect(spec.seccomp.kind).toBe("profile");
  return JSON.parse((spec.seccomp as { json: string }).json);
}

describe("the plugin", () => {
  test("registers strict, unconfined and custom under its name", () => {
    const { kit } = assemble();
    expect(kit.seccompModes.names()).toEqual(["strict", "unconfined", "custom"]);
    for (const mode of ["strict", "unconfined", "custom"]) expect(kit.seccompModes.owner(mode)).toBe("isol8:seccomp");
    expect(seccomp().name).toBe("isol8:seccomp");
  });

  test("strict puts the profile's JSON in the spec's seccomp policy and keeps no-new-privileges and every other field", async () => {
    const { kit } = assemble();
    const spec = await kit.seccompModes.get("strict").shapeSpec(base, context());
    expect(spec.noNewPrivileges).toBe(true);
    expect(spec.capabilities).toEqual([]);
    expect({ ...spec, seccomp: pristine.seccomp }).toEqual(pristine);
    expect(profileOf(spec)).toMatchObject({ defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 1 });
    expect(base).toEqual(pristine); // not mutated
  });

  test("a second shaping replaces an earlier seccomp policy", async () => {
    const { kit } = assemble();
    const unconfined = await kit.seccompModes.get("unconfined").shapeSpec(base, context());
    const strictAfter = await kit.seccompModes.get("strict").shapeSpec(unconfined, context());
    expect(profileOf(strictAfter)).toMatchObject({ defaultAction: "SCMP_ACT_ERRNO" });
    const unconfinedAfter = await kit.seccompModes.get("unconfined").shapeSpec(strictAfter, context());
    expect(unconfinedAfter.seccomp).toEqual({ kind: "unconfined" });
  });

  test("extraAllowed adds names; refused or restricted names are rejected when the factory is called", async () => {
    const { kit } = assemble(seccomp({ extraAllowed: ["sync_file_range2"], architecture: "SCMP_ARCH_AARCH64" }));
    const profile = profileOf(await kit.seccompModes.get("strict").shapeSpec(base, context())) as { syscalls: { names: string[] }[]; architectures: string[] };
    expect(profile.syscalls[0]!.names).toContain("sync_file_range2");
    expect(profile.architectures).toEqual(["SCMP_ARCH_AARCH64"]);
    expect(() => seccomp({ extraAllowed: ["ptrace"] })).toThrow(/Invalid options for plugin isol8:seccomp: options\.extraAllowed\[0\]: "ptrace" is refused/);
    expect(() => seccomp({ extraAllowed: ["clone3"] })).toThrow(/options\.extraAllowed\[0\]: "clone3" is refused or restricted/);
    expect(() => seccomp({ extraAllowed: ["Bad Name"] })).toThrow(/options\.extraAllowed\[0\]: a syscall name/);
    expect(() => seccomp({ architecture: "SCMP_ARCH_X86" } as never)).toThrow(/options\.architecture/);
    expect(() => seccomp({ nope: 1 } as never)).toThrow(/Unrecognized key: "nope"/);
  });

  test("unconfined sets the unconfined policy, keeps no-new-privileges, and warns once per engine", async () => {
    const { kit, warn } = assemble();
    const mode = kit.seccompModes.get("unconfined");
    const spec = await mode.shapeSpec(base, context("a"));
    expect(spec.seccomp).toEqual({ kind: "unconfined" });
    expect(spec.noNewPrivileges).toBe(true);
    await mode.shapeSpec(base, context("a"));
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toMatch(/seccomp is unconfined/);
    expect(warn.mock.calls[0]![1]).toMatchObject({ plugin: "isol8:seccomp", engineId: "a" });
  });

  test("custom applies a validated inline profile; a bad one is an InvalidOptionsError", async () => {
    const { kit, warn } = assemble();
    const mode = kit.seccompModes.get("custom");
    const profile = { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO" }] };
    const spec = await mode.shapeSpec(base, context("e1", { seccomp: "custom", seccompProfile: profile }));
    expect(profileOf(spec)).toEqual(profile);
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/allows every syscall it does not name/), expect.anything());

    const bad = mode.shapeSpec(base, context("e2", { seccomp: "custom", seccompProfile: { ...profile, defaultAction: "ALLOW" } }));
    const error = await Promise.resolve(bad).catch((e: unknown) => e);
    expect(Isol8Error.isInstance(error)).toBe(true);
    expect((error as Isol8Error).code).toBe("ISOL8_ERR_INVALID_OPTIONS");
    expect((error as Error).message).toMatch(
      /security\.seccompProfile: the inline seccomp profile is not a valid Docker seccomp profile: profile\.defaultAction/,
    );
  });

  test("a profile given with another mode is reported as unused, once per engine", async () => {
    const { kit, warn } = assemble();
    const ctx = context("e4", { seccomp: "strict", seccompProfile: "/etc/profile.json" });
    await kit.seccompModes.get("strict").shapeSpec(base, ctx);
    await kit.seccompModes.get("strict").shapeSpec(base, ctx);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toMatch(/security\.seccompProfile is set but the seccomp mode is "strict": the profile is not used/);
    await kit.seccompModes.get("strict").shapeSpec(base, context("e5"));
    expect(warn).toHaveBeenCalledTimes(1);
  });

  test("custom without a profile names the option", async () => {
    const { kit } = assemble();
    await expect(Promise.resolve(kit.seccompModes.get("custom").shapeSpec(base, context("e3", { seccomp: "custom" })))).rejects.toThrow(
      /security\.seccompProfile: seccomp mode "custom" needs a profile/,
    );
  });
});
