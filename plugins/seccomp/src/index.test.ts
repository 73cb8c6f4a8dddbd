import { Isol8Error, Kit, applyPlugins, resolvePlugins, type ContainerSpec, type Logger, type SpecContext } from "@isol8/kit";
import { describe, expect, test, vi } from "vitest";
import { seccomp, withSeccompOpt } from "./index.js";

function assemble(plugin = seccomp()) {
  const warn = vi.fn();
  const log: Logger = { debug() {}, info() {}, warn, error() {} };
  const kit = new Kit(log);
  applyPlugins(kit, resolvePlugins([plugin]));
  kit.seal();
  return { kit, warn };
}

const base: ContainerSpec = { Image: "x", HostConfig: { CapDrop: ["ALL"], SecurityOpt: ["no-new-privileges"] } };

function context(engineId = "engine-1", security: Record<string, unknown> = {}): SpecContext {
  return { runtime: "bash", image: "x", engineId, options: { security } as unknown as SpecContext["options"] };
}

function seccompOf(spec: ContainerSpec): string | undefined {
  return (spec.HostConfig?.SecurityOpt as string[] | undefined)?.find((o) => o.startsWith("seccomp="))?.slice("seccomp=".length);
}

describe("the plugin", () => {
  test("registers strict, unconfined and custom under its name", () => {
    const { kit } = assemble();
    expect(kit.seccompModes.names()).toEqual(["strict", "unconfined", "custom"]);
    for (const mode of ["strict", "unconfined", "custom"]) expect(kit.seccompModes.owner(mode)).toBe("isol8:seccomp");
    expect(seccomp().name).toBe("isol8:seccomp");
  });

  test("strict puts the profile's JSON in SecurityOpt and keeps no-new-privileges", async () => {
    const { kit } = assemble();
    const spec = await kit.seccompModes.get("strict").shapeSpec(base, context());
    expect(spec.HostConfig!.SecurityOpt![0]).toBe("no-new-privileges");
    expect(spec.HostConfig!.SecurityOpt).toHaveLength(2);
    expect(spec.HostConfig!.CapDrop).toEqual(["ALL"]);
    const profile = JSON.parse(seccompOf(spec)!);
    expect(profile).toMatchObject({ defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 1 });
    expect(base.HostConfig!.SecurityOpt).toEqual(["no-new-privileges"]); // not mutated
  });

  test("a second shaping replaces an earlier seccomp entry instead of adding one", () => {
    const twice = withSeccompOpt(withSeccompOpt(base, "unconfined"), "{}");
    expect(twice.HostConfig!.SecurityOpt).toEqual(["no-new-privileges", "seccomp={}"]);
  });

  test("extraAllowed adds names; refused or restricted names are rejected when the factory is called", async () => {
    const { kit } = assemble(seccomp({ extraAllowed: ["sync_file_range2"], architecture: "SCMP_ARCH_AARCH64" }));
    const profile = JSON.parse(seccompOf(await kit.seccompModes.get("strict").shapeSpec(base, context()))!);
    expect(profile.syscalls[0].names).toContain("sync_file_range2");
    expect(profile.architectures).toEqual(["SCMP_ARCH_AARCH64"]);
    expect(() => seccomp({ extraAllowed: ["ptrace"] })).toThrow(/Invalid options for plugin isol8:seccomp: options\.extraAllowed\[0\]: "ptrace" is refused/);
    expect(() => seccomp({ extraAllowed: ["clone3"] })).toThrow(/options\.extraAllowed\[0\]: "clone3" is refused or restricted/);
    expect(() => seccomp({ extraAllowed: ["Bad Name"] })).toThrow(/options\.extraAllowed\[0\]: a syscall name/);
    expect(() => seccomp({ architecture: "SCMP_ARCH_X86" } as never)).toThrow(/options\.architecture/);
    expect(() => seccomp({ nope: 1 } as never)).toThrow(/Unrecognized key: "nope"/);
  });

  test("unconfined sets seccomp=unconfined and warns once per engine", async () => {
    const { kit, warn } = assemble();
    const mode = kit.seccompModes.get("unconfined");
    const spec = await mode.shapeSpec(base, context("a"));
    expect(spec.HostConfig!.SecurityOpt).toEqual(["no-new-privileges", "seccomp=unconfined"]);
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
    expect(JSON.parse(seccompOf(spec)!)).toEqual(profile);
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
