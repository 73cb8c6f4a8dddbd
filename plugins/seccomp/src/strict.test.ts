import { describe, expect, test } from "vitest";
import { seccompProfileSchema, ruleNames, type SeccompProfile } from "./profile.js";
import {
  ALLOWED_PERSONALITIES,
  ALLOWED_SOCKET_FAMILIES,
  ALLOWED_SYSCALL_GROUPS,
  CLONE_NAMESPACE_FLAGS,
  REFUSED_SYSCALLS,
  allowedSyscalls,
  nativeArchitecture,
  strictProfile,
} from "./strict.js";

/** The calls issue 4 says strict must refuse, spelled out here so the test does not trust the list it checks. */
const MUST_REFUSE = [
  "mount",
  "umount",
  "umount2",
  "pivot_root",
  "unshare",
  "setns",
  "ptrace",
  "process_vm_readv",
  "process_vm_writev",
  "keyctl",
  "add_key",
  "request_key",
  "bpf",
  "userfaultfd",
  "perf_event_open",
  "kexec_load",
  "kexec_file_load",
  "init_module",
  "finit_module",
  "delete_module",
  "open_by_handle_at",
  "reboot",
  "swapon",
  "swapoff",
  "acct",
  "clock_settime",
  "clock_adjtime",
  "settimeofday",
  "io_uring_setup",
  "io_uring_enter",
  "io_uring_register",
];

/** Every name any rule lets through (ALLOW, or an argument-conditional ALLOW). */
function allowing(profile: SeccompProfile): Set<string> {
  return new Set(profile.syscalls.filter((r) => r.action === "SCMP_ACT_ALLOW").flatMap(ruleNames));
}

const x64 = strictProfile("SCMP_ARCH_X86_64");
const arm = strictProfile("SCMP_ARCH_AARCH64");

describe("the strict profile's structure", () => {
  test("is a valid Docker seccomp profile: default EPERM, one native architecture", () => {
    for (const profile of [x64, arm]) {
      expect(seccompProfileSchema.parse(profile)).toEqual(profile);
      expect(profile.defaultAction).toBe("SCMP_ACT_ERRNO");
      expect(profile.defaultErrnoRet).toBe(1);
      expect(profile).not.toHaveProperty("archMap");
    }
    expect(x64.architectures).toEqual(["SCMP_ARCH_X86_64"]);
    expect(arm.architectures).toEqual(["SCMP_ARCH_AARCH64"]);
  });

  test("has no 32-bit or x32 entry points", () => {
    for (const profile of [x64, arm]) {
      for (const arch of ["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_ARM"]) expect(profile.architectures).not.toContain(arch);
    }
  });

  test("picks the architecture Node.js runs on", () => {
    expect(nativeArchitecture("x64")).toBe("SCMP_ARCH_X86_64");
    expect(nativeArchitecture("arm64")).toBe("SCMP_ARCH_AARCH64");
    expect(() => nativeArchitecture("ia32")).toThrow(/x86_64 and arm64/);
    expect(strictProfile().architectures).toEqual([nativeArchitecture()]);
  });

  test("every action is ALLOW except clone3 (ENOSYS)", () => {
    for (const rule of x64.syscalls) {
      if (ruleNames(rule).includes("clone3")) expect(rule).toMatchObject({ action: "SCMP_ACT_ERRNO", errnoRet: 38 });
      else expect(rule.action).toBe("SCMP_ACT_ALLOW");
    }
  });

  test("the allowlist is the groups' names (sorted, no duplicates); arch_prctl only on x86_64", () => {
    const unconditional = x64.syscalls[0]!;
    expect(unconditional.args).toBeUndefined();
    expect(unconditional.names).toEqual([...new Set(unconditional.names)].sort());
    expect(unconditional.names).toContain("arch_prctl");
    expect(arm.syscalls[0]!.names).not.toContain("arch_prctl");
    for (const name of Object.values(ALLOWED_SYSCALL_GROUPS).flat()) expect(unconditional.names).toContain(name);
    // Enough for real programs: spot-check what runtimes and shells need.
    for (const name of ["read", "write", "openat", "mmap", "futex", "execve", "wait4", "epoll_pwait", "pipe2", "rseq", "getrandom", "statx"]) {
      expect(unconditional.names).toContain(name);
    }
  });

  test("no name is both in a group and refused, and no group lists a name twice", () => {
    const grouped = Object.values(ALLOWED_SYSCALL_GROUPS).flat();
    expect(grouped.length).toBe(new Set(grouped).size);
    for (const name of grouped) expect(REFUSED_SYSCALLS).not.toHaveProperty(name);
  });
});

describe("what strict refuses", () => {
  test("every syscall issue 4 lists is refused, and no rule allows it", () => {
    for (const profile of [x64, arm]) {
      const allowed = allowing(profile);
      for (const name of MUST_REFUSE) {
        expect(REFUSED_SYSCALLS, name).toHaveProperty(name);
        expect(allowed.has(name), name).toBe(false);
      }
    }
  });

  test("no refused name is allowed by any rule, even with extra names", () => {
    const allowed = allowing(strictProfile("SCMP_ARCH_X86_64", ["sync_file_range2"]));
    expect(allowed.has("sync_file_range2")).toBe(true);
    for (const name of Object.keys(REFUSED_SYSCALLS)) expect(allowed.has(name), name).toBe(false);
  });

  test("ptrace and friends are refused although Docker's default allows them", () => {
    for (const name of ["ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise"]) {
      expect(allowing(x64).has(name), name).toBe(false);
    }
  });
});

describe("argument filters", () => {
  test("clone is allowed only with no namespace flag (masked with CLONE_NEW*)", () => {
    const rules = x64.syscalls.filter((r) => ruleNames(r).includes("clone"));
    expect(rules).toHaveLength(1);
    expect(rules[0]).toMatchObject({ names: ["clone"], action: "SCMP_ACT_ALLOW" });
    expect(rules[0]!.args).toEqual([{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }]);
    // NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET, as Docker masks them.
    expect(CLONE_NAMESPACE_FLAGS).toBe(0x7e020000);
    const CLONE_NEWNS = 0x20000,
      CLONE_NEWUSER = 0x10000000,
      CLONE_NEWNET = 0x40000000,
      CLONE_NEWPID = 0x20000000;
    for (const flag of [CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWPID]) expect(CLONE_NAMESPACE_FLAGS & flag).toBe(flag);
    // What glibc's pthread_create passes (CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID) passes the mask.
    expect(0x3d0f00 & CLONE_NAMESPACE_FLAGS).toBe(0);
  });

  test("clone3 answers ENOSYS so libc falls back to clone", () => {
    const rules = x64.syscalls.filter((r) => ruleNames(r).includes("clone3"));
    expect(rules).toEqual([expect.objectContaining({ names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38 })]);
  });

  test("personality only with harmless values: never ADDR_NO_RANDOMIZE or READ_IMPLIES_EXEC", () => {
    const rules = x64.syscalls.filter((r) => ruleNames(r).includes("personality"));
    const values = rules.map((r) => {
      expect(r.args).toHaveLength(1);
      expect(r.args![0]).toMatchObject({ index: 0, op: "SCMP_CMP_EQ" });
      return r.args![0]!.value;
    });
    expect(values.sort((a, b) => a - b)).toEqual([0x0, 0x8, 0x20000, 0x20008, 0xffffffff]);
    expect([...ALLOWED_PERSONALITIES]).toEqual([0x0, 0x8, 0x20000, 0x20008, 0xffffffff]);
    for (const v of values) {
      if (v === 0xffffffff) continue; // the query: changes nothing
      expect(v & 0x0040000).toBe(0); // ADDR_NO_RANDOMIZE
      expect(v & 0x0400000).toBe(0); // READ_IMPLIES_EXEC
    }
  });

  test("socket only for AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK (no AF_ALG, AF_VSOCK, AF_PACKET)", () => {
    const rules = x64.syscalls.filter((r) => ruleNames(r).includes("socket"));
    const families = rules.map((r) => {
      expect(r.args).toEqual([expect.objectContaining({ index: 0, op: "SCMP_CMP_EQ" })]);
      return r.args![0]!.value;
    });
    expect(families.sort((a, b) => a - b)).toEqual([1, 2, 10, 16]);
    expect(Object.values(ALLOWED_SOCKET_FAMILIES).sort((a, b) => a - b)).toEqual([1, 2, 10, 16]);
    for (const denied of [17, 38, 40]) expect(families).not.toContain(denied);
  });

  test("only the deliberately filtered calls carry argument conditions", () => {
    const conditional = new Set(x64.syscalls.filter((r) => r.args?.length).flatMap(ruleNames));
    expect([...conditional].sort()).toEqual(["clone", "personality", "socket"]);
  });
});

test("allowedSyscalls() counts what the report says: ~300 names", () => {
  const names = allowedSyscalls("SCMP_ARCH_X86_64");
  expect(names.length).toBeGreaterThan(280);
  expect(names.length).toBeLessThan(320);
});
