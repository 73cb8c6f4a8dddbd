import { allowedSyscalls } from "./allowed-syscalls.js";
import type { SeccompArchitecture, SeccompProfile, SeccompRule } from "./profile.js";

export { ALLOWED_SYSCALL_GROUPS, X86_64_ONLY_SYSCALLS, allowedSyscalls } from "./allowed-syscalls.js";
export { REFUSED_SYSCALLS } from "./refused-syscalls.js";

/**
 * isol8's `strict` seccomp profile, written and owned here as data: the policy and the profile
 * builder here, the unconditional allowlist in allowed-syscalls.ts, the refusals and their
 * reasons in refused-syscalls.ts.
 *
 * It is an allowlist: a syscall not named by a rule fails with EPERM. It starts from what Docker's
 * default profile allows a container without capabilities (isol8 drops them all) and is tighter:
 *
 * - native 64-bit architecture only: no x86 (int 0x80) or x32 entry points, whose syscall
 *   numbers and argument layouts (socketcall) slip past per-syscall rules;
 * - no io_uring (a large, bug-prone kernel surface that bypasses per-syscall filtering);
 * - clone only without namespace flags, clone3 answered with ENOSYS (so glibc falls back to
 *   clone, whose flags a filter can see), no unshare or setns: no new namespaces at all;
 * - no ptrace, process_vm_readv/writev, kcmp, pidfd_getfd: no reading or steering other processes;
 * - personality only with the values that do not weaken the process (no ADDR_NO_RANDOMIZE,
 *   no READ_IMPLIES_EXEC);
 * - socket() only for Unix, IPv4, IPv6 and netlink sockets (Docker allows ~40 families);
 * - a few more calls Docker allows that no sandboxed program needs (see REFUSED_SYSCALLS).
 *
 * Names that do not exist on the engine's architecture (the legacy x86_64 calls on aarch64) are
 * ignored by runc, so one list serves both. Names newer than the engine's libseccomp are ignored
 * too, and the kernel then answers ENOSYS, which libc treats as "not supported, fall back".
 */

/**
 * The namespace flags of clone(2): CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
 * CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET (0x7E020000). clone is allowed only when
 * `flags & CLONE_NAMESPACE_FLAGS === 0`.
 */
export const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;

/**
 * personality(2) values that are allowed: PER_LINUX (0), PER_LINUX32 (0x8: uname says i686, as
 * `linux32` does), UNAME26 (0x20000), UNAME26|PER_LINUX32 (0x20008) and 0xffffffff (a query).
 * Everything else is refused, notably ADDR_NO_RANDOMIZE (0x0040000, turns ASLR off for the
 * program and its children) and READ_IMPLIES_EXEC (0x0400000, makes readable memory executable).
 */
export const ALLOWED_PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff] as const;

/** socket(2) address families that are allowed: AF_UNIX (1), AF_INET (2), AF_INET6 (10), AF_NETLINK (16, for getifaddrs). */
export const ALLOWED_SOCKET_FAMILIES = { AF_UNIX: 1, AF_INET: 2, AF_INET6: 10, AF_NETLINK: 16 } as const;

const EPERM = 1;
const ENOSYS = 38;

/** The seccomp architecture for a Node.js `process.arch`; only 64-bit x86 and ARM are supported. */
export function nativeArchitecture(arch: string = process.arch): SeccompArchitecture {
  if (arch === "x64") return "SCMP_ARCH_X86_64";
  if (arch === "arm64") return "SCMP_ARCH_AARCH64";
  throw new Error(`The strict seccomp profile supports x86_64 and arm64 Docker engines, not "${arch}".`);
}

/** Builds the strict profile for one architecture; `extraAllowed` adds names (never refused ones: the plugin checks). */
export function strictProfile(architecture: SeccompArchitecture = nativeArchitecture(), extraAllowed: readonly string[] = []): SeccompProfile {
  const rules: SeccompRule[] = [
    { names: allowedSyscalls(architecture, extraAllowed), action: "SCMP_ACT_ALLOW" },
    {
      names: ["clone"],
      action: "SCMP_ACT_ALLOW",
      args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }],
      comment: "threads and processes, never new namespaces",
    },
    {
      names: ["clone3"],
      action: "SCMP_ACT_ERRNO",
      errnoRet: ENOSYS,
      comment: "clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc fall back to clone",
    },
    // One rule per allowed value: runc ORs the rules of one syscall.
    ...ALLOWED_PERSONALITIES.map((value): SeccompRule => ({
      names: ["personality"],
      action: "SCMP_ACT_ALLOW",
      args: [{ index: 0, value, op: "SCMP_CMP_EQ" }],
    })),
    ...Object.entries(ALLOWED_SOCKET_FAMILIES).map(([family, value]): SeccompRule => ({
      names: ["socket"],
      action: "SCMP_ACT_ALLOW",
      args: [{ index: 0, value, op: "SCMP_CMP_EQ" }],
      comment: family,
    })),
  ];
  return { defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: EPERM, architectures: [architecture], syscalls: rules };
}
