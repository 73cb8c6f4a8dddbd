/**
 * What the strict profile refuses on purpose, each call with the reason (see strict.ts for the
 * policy). The plugin refuses these names in `extraAllowed`.
 */

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
