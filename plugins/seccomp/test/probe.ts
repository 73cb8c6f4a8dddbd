/**
 * A Python program that makes raw syscalls through ctypes and prints one JSON object: for each
 * probe, "ok" when the call succeeded, else the errno's name. Calls are made with harmless or
 * deliberately invalid arguments (bubblewrap's technique): when seccomp refuses a call the
 * answer is the profile's errno (EPERM, or ENOSYS for clone3); when the call reaches the kernel
 * the answer is success or EFAULT/EINVAL/EBADF. Run under a profile that lets the calls through,
 * the same program is the positive control.
 */
export const SYSCALL_PROBE = String.raw`
import ctypes, errno, json, os, platform, socket

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = {
    "x86_64": {"keyctl": 250, "io_uring_setup": 425, "clone": 56, "clone3": 435, "setns": 308, "bpf": 321,
               "userfaultfd": 323, "perf_event_open": 298, "process_vm_readv": 310, "getppid": 110},
    "aarch64": {"keyctl": 219, "io_uring_setup": 425, "clone": 220, "clone3": 435, "setns": 268, "bpf": 280,
                "userfaultfd": 282, "perf_event_open": 241, "process_vm_readv": 270, "getppid": 173},
}[platform.machine()]
L = ctypes.c_long

def outcome(fn):
    ctypes.set_errno(0)
    r = fn()
    if r == -1:
        e = ctypes.get_errno()
        return errno.errorcode.get(e, str(e))
    return "ok"

def raw(name, *args):
    return lambda: libc.syscall(L(NR[name]), *[L(a) for a in args])

def sock(family, kind):
    try:
        socket.socket(family, kind).close()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def clone_newuser():
    # A raw clone with CLONE_NEWUSER|SIGCHLD: if it goes through, the child leaves at once.
    r = libc.syscall(L(NR["clone"]), L(0x10000000 | 17), L(0), L(0), L(0), L(0))
    if r == 0:
        os._exit(0)
    if r > 0:
        os.waitpid(r, 0)
        return "ok"
    return errno.errorcode.get(ctypes.get_errno(), "?")

def isolated(fn):
    # Each probe runs in its own child, so one that succeeds (ptrace, unshare) changes nothing for the next.
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            result = fn()
        except Exception as e:
            result = "exception: %r" % (e,)
        os.write(w, result.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        result = f.read()
    os.waitpid(pid, 0)
    return result

def fork_works():
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    return "ok" if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7 else "bad"

results = {
    # Allowed calls: the probe machinery itself works.
    "getppid": isolated(lambda: outcome(raw("getppid"))),
    "personality(query)": isolated(lambda: outcome(lambda: libc.personality(L(0xffffffff)))),
    "fork": fork_works(),
    "socket(AF_INET)": isolated(lambda: sock(socket.AF_INET, socket.SOCK_STREAM)),
    "socket(AF_UNIX)": isolated(lambda: sock(socket.AF_UNIX, socket.SOCK_STREAM)),
    # Refused by strict.
    "mount": isolated(lambda: outcome(lambda: libc.mount(None, None, None, L(0), None))),
    "ptrace(TRACEME)": isolated(lambda: outcome(lambda: libc.ptrace(L(0), L(0), L(0), L(0)))),
    "keyctl": isolated(lambda: outcome(raw("keyctl", 0, 0, 0, 0, 0))),
    "io_uring_setup": isolated(lambda: outcome(raw("io_uring_setup", 1, 0))),
    "personality(ADDR_NO_RANDOMIZE)": isolated(lambda: outcome(lambda: libc.personality(L(0x0040000)))),
    "clone3": isolated(lambda: outcome(raw("clone3", 0, 0))),
    "clone(CLONE_NEWUSER)": isolated(clone_newuser),
    "setns": isolated(lambda: outcome(raw("setns", -1, 0))),
    "bpf": isolated(lambda: outcome(raw("bpf", -1, 0, 0))),
    "userfaultfd(USER_MODE_ONLY)": isolated(lambda: outcome(raw("userfaultfd", 1))),
    "perf_event_open": isolated(lambda: outcome(raw("perf_event_open", 0, 0, -1, -1, 0))),
    "process_vm_readv": isolated(lambda: outcome(raw("process_vm_readv", os.getpid(), 0, 0, 0, 0, 0))),
    "socket(AF_ALG)": isolated(lambda: sock(38, socket.SOCK_SEQPACKET)),
    "socket(AF_VSOCK)": isolated(lambda: sock(40, socket.SOCK_STREAM)),
    "unshare(CLONE_NEWUSER)": isolated(lambda: outcome(lambda: libc.unshare(L(0x10000000)))),
}
print(json.dumps(results))
`;

/** Probes that succeed under strict: they show the probe program works. */
export const ALLOWED_PROBES = ["getppid", "personality(query)", "fork", "socket(AF_INET)", "socket(AF_UNIX)"] as const;

/** Probes strict refuses, with the errno it answers. */
export const REFUSED_PROBES: Record<string, string> = {
  mount: "EPERM",
  "ptrace(TRACEME)": "EPERM",
  keyctl: "EPERM",
  io_uring_setup: "EPERM",
  "personality(ADDR_NO_RANDOMIZE)": "EPERM",
  clone3: "ENOSYS",
  "clone(CLONE_NEWUSER)": "EPERM",
  setns: "EPERM",
  bpf: "EPERM",
  "userfaultfd(USER_MODE_ONLY)": "EPERM",
  perf_event_open: "EPERM",
  process_vm_readv: "EPERM",
  "socket(AF_ALG)": "EPERM",
  "socket(AF_VSOCK)": "EPERM",
  "unshare(CLONE_NEWUSER)": "EPERM",
};

/**
 * x86_64 only: syscalls through the other x86 ABIs, each in a child process. "x32" is getpid
 * with the x32 bit (0x40000000) set, made with the ordinary `syscall` instruction; "int80" runs
 * three instructions from an executable anonymous mapping: `mov eax, 20` (i386 getpid);
 * `int 0x80`; `ret`. A child killed by a signal reports "signal N" (31 is SIGSYS: seccomp killed
 * it for a foreign architecture; 11 is SIGSEGV: the kernel has no 32-bit emulation at all).
 */
export const ABI_PROBE = String.raw`
import ctypes, errno, json, mmap, os

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def isolated(fn):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, fn().encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    status = os.waitpid(pid, 0)[1]
    return out or ("signal %d" % os.WTERMSIG(status) if os.WIFSIGNALED(status) else "exit %d" % os.WEXITSTATUS(status))

def x32_getpid():
    r = libc.syscall(ctypes.c_long(0x40000000 | 39))
    return "ok" if r > 0 else errno.errorcode.get(ctypes.get_errno(), "?")

def int80_getpid():
    buf = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    buf.write(bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3]))
    r = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(buf)))()
    return "ok" if r > 0 else errno.errorcode.get(-r, str(r))

print(json.dumps({"native": isolated(lambda: "ok" if libc.syscall(ctypes.c_long(39)) > 0 else "failed"), "x32": isolated(x32_getpid), "int80": isolated(int80_getpid)}))
`;
