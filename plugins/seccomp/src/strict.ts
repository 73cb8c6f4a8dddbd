import type { SeccompArchitecture, SeccompProfile, SeccompRule } from "./profile.js";

/**
 * isol8's `strict` seccomp profile, written and owned here as data.
 *
 * It is an allowlist: a syscall not named below fails with EPERM. It starts from what Docker's
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

/** Syscalls allowed without conditions, in groups that say what they are for. */
export const ALLOWED_SYSCALL_GROUPS = {
  /** Opening, reading, writing and closing files and descriptors. */
  fileIo: [
    "open",
    "openat",
    "openat2",
    "creat",
    "close",
    "close_range",
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "preadv2",
    "pwritev",
    "pwritev2",
    "lseek",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "flock",
    "ioctl",
    "fsync",
    "fdatasync",
    "sync",
    "syncfs",
    "sync_file_range",
    "fallocate",
    "fadvise64",
    "readahead",
    "truncate",
    "ftruncate",
    "copy_file_range",
    "sendfile",
    "splice",
    "tee",
    "vmsplice",
  ],
  /** File metadata and the directory tree. */
  filesystem: [
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "statfs",
    "fstatfs",
    "access",
    "faccessat",
    "faccessat2",
    "getcwd",
    "chdir",
    "fchdir",
    "getdents",
    "getdents64",
    "mkdir",
    "mkdirat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "unlink",
    "unlinkat",
    "readlink",
    "readlinkat",
    // mknod makes FIFOs (mkfifo); device nodes need CAP_MKNOD, which is dropped.
    "mknod",
    "mknodat",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "fchown",
    "fchownat",
    "lchown",
    "umask",
    "utime",
    "utimes",
    "utimensat",
    "futimesat",
    "cachestat",
    "statmount",
    "listmount",
  ],
  /** Extended attributes (ls and cp read them). */
  xattr: [
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "getxattrat",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "setxattrat",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "listxattrat",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "removexattrat",
  ],
  /** Watching files for changes (dev servers, file watchers). */
  inotify: ["inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch"],
  /** Memory management; pkeys and membarrier are used by V8 and other JITs. */
  memory: [
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "mincore",
    "msync",
    "remap_file_pages",
    "mlock",
    "mlock2",
    "mlockall",
    "munlock",
    "munlockall",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "map_shadow_stack",
    "mseal",
  ],
  /** Starting, running and ending processes and threads (clone itself is conditional, below). */
  processes: [
    "fork",
    "vfork",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "getpid",
    "getppid",
    "gettid",
    "getpgid",
    "setpgid",
    "getpgrp",
    "getsid",
    "setsid",
    "set_tid_address",
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "restart_syscall",
    "futex",
    "futex_waitv",
    "futex_wait",
    "futex_wake",
    "futex_requeue",
    "prctl",
    "pidfd_open",
    "pidfd_send_signal",
    "process_mrelease",
    "uretprobe",
  ],
  /** User and group ids and capabilities: changing them needs capabilities the sandbox lacks. */
  credentials: [
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setfsuid",
    "setfsgid",
    "setgroups",
    "capget",
    "capset",
  ],
  /** Scheduling, priorities, resource limits and usage, system information. */
  scheduling: [
    "sched_yield",
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_getattr",
    "sched_setattr",
    "sched_getparam",
    "sched_setparam",
    "sched_getscheduler",
    "sched_setscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    "getpriority",
    "setpriority",
    "ioprio_get",
    "ioprio_set",
    "getrlimit",
    "setrlimit",
    "prlimit64",
    "getrusage",
    "times",
    "getcpu",
    "sysinfo",
    "uname",
  ],
  /** Signals. */
  signals: [
    "kill",
    "tkill",
    "tgkill",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "rt_sigsuspend",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "pause",
    "alarm",
  ],
  /** Reading clocks, sleeping and timers (setting clocks is refused). */
  time: [
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "time",
    "getitimer",
    "setitimer",
    "timer_create",
    "timer_delete",
    "timer_gettime",
    "timer_settime",
    "timer_getoverrun",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
  ],
  /** Event loops: polling, epoll, eventfd, pipes. */
  events: [
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "eventfd",
    "eventfd2",
    "pipe",
    "pipe2",
  ],
  /** Linux native AIO (not io_uring, which is refused). */
  aio: ["io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents"],
  /** Sockets (socket() itself is conditional on the address family, below). */
  sockets: [
    "socketpair",
    "bind",
    "listen",
    "accept",
    "accept4",
    "connect",
    "getsockname",
    "getpeername",
    "getsockopt",
    "setsockopt",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "shutdown",
  ],
  /** System V and POSIX IPC: private to the container (IpcMode "private"). Python's multiprocessing uses them. */
  ipc: [
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
  ],
  /** Programs may restrict themselves further. */
  selfSandboxing: ["seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"],
  /** Randomness. */
  random: ["getrandom"],
} as const satisfies Record<string, readonly string[]>;

/** Allowed only on x86_64 (thread-local storage setup by libc). */
export const X86_64_ONLY_SYSCALLS = ["arch_prctl"] as const;

/**
 * Syscalls strict refuses, each with the reason. Not allowed by any rule; the unit tests check
 * that. (A name missing from both lists is refused too: the profile's default action.)
 */
export const REFUSED_SYSCALLS: Readonly<Record<string, string>> = {
  // Mounts and the filesystem view
  mount: "mounting filesystems",
  umount: "unmounting",
  umount2: "unmounting",
  pivot_root: "changing the root filesystem",
  chroot: "changing the root directory",
  fsopen: "new mount API",
  fsconfig: "new mount API",
  fsmount: "new mount API",
  fspick: "new mount API",
  move_mount: "new mount API",
  open_tree: "new mount API",
  mount_setattr: "new mount API",
  // Namespaces
  unshare: "creating namespaces (user namespaces open kernel surface meant for root)",
  setns: "entering other namespaces",
  // Other processes
  ptrace: "tracing and steering other processes (Docker allows it on kernels >= 4.8)",
  process_vm_readv: "reading another process's memory",
  process_vm_writev: "writing another process's memory",
  kcmp: "comparing other processes' kernel resources",
  pidfd_getfd: "stealing another process's descriptors",
  process_madvise: "advising on another process's memory",
  // Kernel keyrings: not namespaced, persistent across containers
  keyctl: "kernel keyrings are shared across containers",
  add_key: "kernel keyrings",
  request_key: "kernel keyrings",
  // Large kernel attack surfaces
  bpf: "loading eBPF programs",
  userfaultfd: "stalls kernel page faults (a classic exploit primitive)",
  perf_event_open: "performance counters (kernel surface, side channels)",
  io_uring_setup: "io_uring: large, bug-prone, and its operations bypass syscall filtering",
  io_uring_enter: "io_uring",
  io_uring_register: "io_uring",
  // The kernel and its modules
  kexec_load: "loading a new kernel",
  kexec_file_load: "loading a new kernel",
  init_module: "loading kernel modules",
  finit_module: "loading kernel modules",
  delete_module: "unloading kernel modules",
  reboot: "rebooting",
  syslog: "reading the kernel log",
  lookup_dcookie: "kernel profiling",
  // Files by handle
  open_by_handle_at: "opening files by handle escapes the container's filesystem view (the 'shocker' exploit)",
  name_to_handle_at: "only useful with open_by_handle_at, which is refused",
  // Host-wide state
  swapon: "swap",
  swapoff: "swap",
  acct: "process accounting",
  quotactl: "disk quotas",
  quotactl_fd: "disk quotas",
  sethostname: "host name",
  setdomainname: "domain name",
  vhangup: "terminal hang-up",
  fanotify_init: "filesystem-wide monitoring",
  fanotify_mark: "only useful with fanotify_init, which is refused",
  // Clocks
  clock_settime: "setting the system clock",
  clock_adjtime: "adjusting the system clock",
  settimeofday: "setting the system clock",
  adjtimex: "adjusting the system clock",
  // NUMA memory policy (Docker allows it only with CAP_SYS_NICE)
  mbind: "NUMA policy",
  set_mempolicy: "NUMA policy",
  get_mempolicy: "NUMA policy",
  set_mempolicy_home_node: "NUMA policy",
  migrate_pages: "moving another process's pages",
  move_pages: "moving pages between NUMA nodes",
  // Hardware access and 32-bit leftovers on x86_64
  iopl: "raw I/O port access",
  ioperm: "raw I/O port access",
  modify_ldt: "16/32-bit segment descriptors: no 64-bit runtime needs it, and it has a history of kernel bugs",
  set_thread_area: "32-bit thread-local storage",
  get_thread_area: "32-bit thread-local storage",
  // LSM attributes (Docker allows them only with CAP_SYS_ADMIN)
  lsm_get_self_attr: "LSM attributes",
  lsm_set_self_attr: "LSM attributes",
  lsm_list_modules: "LSM attributes",
  // Obsolete or unimplemented
  uselib: "obsolete",
  ustat: "obsolete",
  sysfs: "obsolete",
  _sysctl: "obsolete",
  nfsservctl: "removed from the kernel",
  epoll_ctl_old: "never implemented",
  epoll_wait_old: "never implemented",
};

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

/** Every name strict allows, with or without conditions, for an architecture. */
export function allowedSyscalls(architecture: SeccompArchitecture, extra: readonly string[] = []): string[] {
  const names = [...Object.values(ALLOWED_SYSCALL_GROUPS).flat(), ...(architecture === "SCMP_ARCH_X86_64" ? X86_64_ONLY_SYSCALLS : []), ...extra];
  return [...new Set(names)].sort();
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
