/*
 * isol8-executor: the main process of an isol8 container (under Docker's init). It starts
 * programs on request, as the sandbox user, and reports their output and exit. Requests come
 * as frames on stdin, answers go out as frames on stdout (the container's attach stream);
 * nothing else is ever written to stdout. Diagnostics go to stderr. See PROTOCOL.md.
 *
 * Privileges: the executor runs as uid 0 holding only CAP_SETUID, CAP_SETGID and CAP_SETPCAP
 * (Docker gives capabilities to uid 0 only). Every program (and the tar that unpacks its
 * files) runs in a child that empties its capability bounding set, switches groups, gid and
 * uid to the sandbox user (which clears every capability), sets no_new_privs, starts its own
 * session and execs. Killing the sandbox user's processes needs no CAP_KILL: the executor
 * switches only its *effective* uid to the sandbox user, sends SIGKILL, and switches back. Its
 * real and saved uid stay 0, so no sandbox process can signal, trace or open it, at any time.
 *
 * C11 + glibc (Linux), no other dependency.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define PROTOCOL_VERSION 4u
/*
 * The sandbox user: a uid (and the same gid) of this container alone, given by the engine in
 * the container's environment (ISOL8_SANDBOX_UID), from a range no host account uses, so per-user kernel limits (inotify
 * instances, keyrings, RLIMIT_NPROC, System V IPC) are per sandbox. Never 0.
 */
#define SANDBOX_UID_MIN 1000000000u
#define SANDBOX_UID_MAX 1999999999u
static uid_t sandbox_uid;
static gid_t sandbox_gid;
/* This binary's path as the container started it: a RUN of exactly `<it> --wipe` is the wipe. */
static const char *self_path;
#define SANDBOX_UID sandbox_uid
#define SANDBOX_GID sandbox_gid
/* Where the image's /etc/passwd and /etc/group link to (a small root-owned tmpfs), and their base. */
#define USERS_DIR "/run/isol8"
#define USERS_BASE "/usr/lib/isol8"

/* Limits. */
#define MAX_FRAME (64u * 1024u * 1024u) /* one request frame */
#define MAX_ITEMS 65536u                /* argv or env entries */
#define READ_CHUNK 65536                /* one output frame carries at most this much */
#define OUT_HIGH_WATER (1u << 20)       /* queued for the engine: stop reading the program's pipes */
#define IN_HIGH_WATER (4u << 20)        /* queued for tar or the program's stdin: stop reading requests */
#define DRAIN_MS 2000                   /* wait for the pipes' EOF after everything was killed */
#define KILL_ROUNDS 2000                /* 1 ms apart: give up on "everything is dead" after ~2 s */
#define CTL_PIPE (1u << 20)             /* a standby's control pipe asks for this much room */
#define MAX_CONTEXTS 16                 /* interpreter contexts at once */
#define RICH_OUTPUTS_DIR "/tmp/.isol8-outputs" /* where display() helpers write (@isol8/kit's RICH_OUTPUTS_DIR) */

/* Frame types: engine -> executor. */
enum { F_RUN = 0x01, F_FILES = 0x02, F_STDIN = 0x03, F_KILL = 0x04, F_KILLALL = 0x05, F_PING = 0x06, F_PREPARE = 0x07 };
enum { F_CTX_START = 0x08, F_CTX_SEND = 0x09, F_CTX_SIGNAL = 0x0a };
/* Frame types: executor -> engine. */
enum { F_HELLO = 0x81, F_STDOUT = 0x82, F_STDERR = 0x83, F_EXIT = 0x84, F_DONE = 0x85, F_PONG = 0x86, F_ERROR = 0x8f };
enum { F_CTX_STDOUT = 0x87, F_CTX_STDERR = 0x88, F_CTX_MSG = 0x89, F_CTX_EXIT = 0x8a };
/* RUN flags. */
enum { RUN_MEASURE = 1u, RUN_FILES = 2u, RUN_STDIN = 4u, RUN_WARM = 8u };
/* EXIT flags. */
enum { EX_TIMED_OUT = 1u, EX_KILLED = 2u, EX_USAGE = 4u, EX_OUTPUT_CUT = 8u, EX_START_FAILED = 16u, EX_WARM = 32u, EX_OOM_COUNTED = 64u, EX_RICH_OUTPUTS = 128u };
/* The EXIT payload after the request id. */
#define EXIT_SIZE 64
/* GO message flags (executor -> standby, see PROTOCOL.md "The standby"). */
enum { GO_KEEP_CTL = 1u, GO_WARM = 2u, GO_STDIN = 4u };
/* EXIT kinds. */
enum { KIND_EXITED = 0, KIND_SIGNALED = 1 };

enum phase { IDLE, UNPACKING, RUNNING, DRAINING };

typedef struct {
  unsigned char *p;
  size_t len, cap, off;
} buf_t;

struct run {
  enum phase phase;
  uint32_t id, flags, time_limit_ms;
  char **argv, **envp, *cwd, *stdin_path;
  /* Unpacking. */
  pid_t tar_pid;
  int tar_in, tar_done, tar_status, files_done;
  buf_t tar_q;
  /* Running. */
  pid_t pid;
  int exited, status, kill_reason;
  struct rusage ru;
  int stdin_r, stdin_w, stdin_done;
  buf_t stdin_q;
  int out_r, err_r, out_w, err_w;
  int output_cut, start_failed, has_started, warm;
  /* The standby's control pipe, until the GO message is written. */
  int ctl_w;
  struct timespec received, started, ended, drain_until;
  uint64_t rx0, tx0;
  /* The memory cgroup's OOM kill counter when the RUN arrived (oom_known: it could be read). */
  uint64_t oom0;
  int oom_known;
  uint32_t acks[64];
  unsigned nacks;
};

static struct run R;

/*
 * The standby: the next run's process, started by PREPARE while the executor is idle. A child
 * that became the sandbox user in its own session, its stdio on fresh pipes, exec'd a runtime's
 * warm-start program (e.g. an interpreter that has done its start-up), which waits for the next
 * GO message on fd 3 and runs that request in-process. Only a RUN with the warm flag uses it.
 */
struct standby {
  pid_t pid; /* 0: none */
  int ctl_w, in_w, out_r, err_r, out_w, err_w;
  /* Its fd 4: the warm-start program closes it once it waits for the GO; then PREPARE is answered. */
  int ready_r;
  uint32_t prepare_id;
  int prepare_pending;
};
#define NO_STANDBY ((struct standby){0, -1, -1, -1, -1, -1, -1, -1, 0, 0})
static struct standby S = NO_STANDBY;

/*
 * An interpreter context: a kernel program (a runtime's long-lived interpreter) started by
 * CTX_START as the sandbox user in its own session, fd 3 its input (CTX_SEND), fd 4 its messages
 * (CTX_MSG), fds 1 and 2 its output. The end-of-run kill spares the processes of the contexts'
 * sessions (a process can never join another session); KILLALL ends them too.
 */
struct context {
  int used;
  uint32_t id;
  pid_t pid; /* the kernel, and its session's id; 0 once reaped */
  int status, reaped;
  int in_w, out_r, err_r, msg_r;
  buf_t in_q;
  /* Once the kernel is reaped: the rest of its session was killed; stop waiting for EOF then. */
  struct timespec drain_until;
};
static struct context C[MAX_CONTEXTS];
/* The longest GO message: half the room of a control pipe (the PREPARE's GO may still be in it). */
static size_t max_go = 32768;
static buf_t in_q, out_q;
static int sfd = -1;
/* /dev/null, opened once (close-on-exec): the stdin of a program that gets none. */
static int devnull = -1;
extern char **environ;

/* ------------------------------------------------------------------ small helpers */

static void diag(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  ssize_t ignored = write(2, "isol8-executor: ", 16);
  ignored = write(2, line, (size_t)n);
  (void)ignored;
}

static void die(const char *what) {
  diag("%s: %s", what, strerror(errno));
  exit(2);
}

static void buf_reserve(buf_t *b, size_t extra) {
  if (b->off > 0 && b->off == b->len) b->off = b->len = 0;
  if (b->len + extra <= b->cap) return;
  if (b->off > 0) {
    memmove(b->p, b->p + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
    if (b->len + extra <= b->cap) return;
  }
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + extra) cap *= 2;
  unsigned char *p = realloc(b->p, cap);
  if (!p) die("out of memory");
  b->p = p;
  b->cap = cap;
}

static void buf_append(buf_t *b, const void *data, size_t n) {
  if (n == 0) return;
  buf_reserve(b, n);
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

static size_t buf_pending(const buf_t *b) { return b->len - b->off; }

static void buf_consume(buf_t *b, size_t n) {
  b->off += n;
  if (b->off == b->len) b->off = b->len = 0;
}

static void buf_free(buf_t *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

static void put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static void put64(unsigned char *p, uint64_t v) {
  put32(p, (uint32_t)(v >> 32));
  put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const unsigned char *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void now(struct timespec *t) { clock_gettime(CLOCK_MONOTONIC, t); }

static int64_t ms_between(const struct timespec *a, const struct timespec *b) {
  return (int64_t)(b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

static uint64_t us_between(const struct timespec *a, const struct timespec *b) {
  int64_t us = (int64_t)(b->tv_sec - a->tv_sec) * 1000000 + (b->tv_nsec - a->tv_nsec) / 1000;
  return us < 0 ? 0 : (uint64_t)us;
}

static void add_ms(struct timespec *t, int64_t ms) {
  t->tv_sec += ms / 1000;
  t->tv_nsec += (ms % 1000) * 1000000;
  if (t->tv_nsec >= 1000000000) {
    t->tv_sec++;
    t->tv_nsec -= 1000000000;
  }
}

static void set_nonblock(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) die("fcntl");
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* ------------------------------------------------------------------ frames out */

static void frame(uint8_t type, uint32_t id, const void *data, size_t n) {
  unsigned char h[9];
  h[0] = type;
  put32(h + 1, (uint32_t)(4 + n));
  put32(h + 5, id);
  buf_append(&out_q, h, sizeof h);
  buf_append(&out_q, data, n);
}

static void frame_text(uint8_t type, uint32_t id, const char *text) { frame(type, id, text, strlen(text)); }

/* Writes what the stdout pipe takes now; the rest waits for POLLOUT. */
static void flush_out(void) {
  while (buf_pending(&out_q) > 0) {
    ssize_t n = write(1, out_q.p + out_q.off, buf_pending(&out_q));
    if (n > 0) {
      buf_consume(&out_q, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    /* The attach stream is gone for good: nobody can ever read an answer. */
    diag("stdout: %s", n < 0 ? strerror(errno) : "closed");
    exit(0);
  }
}

/* ------------------------------------------------------------------ the sandbox user */

/*
 * In a child: become the sandbox user with nothing left. Bounding set emptied (needs
 * CAP_SETPCAP), ambient set cleared, groups/gid/uid switched (the uid switch clears the
 * permitted and effective sets), no_new_privs set, then everything checked.
 */
/*
 * Reads a small file (/proc, /sys) into text, NUL-terminated. Returns its length (0: empty or
 * unreadable), or -1 when it cannot be opened.
 */
static ssize_t read_text(const char *path, char *text, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, text, size - 1);
  close(fd);
  if (n < 0) n = 0;
  text[n] = '\0';
  return n;
}

/* The bounding set from /proc/self/status (CapBnd), or all ones when it cannot be read. */
static uint64_t bounding_set(void) {
  char text[4096];
  if (read_text("/proc/self/status", text, sizeof text) <= 0) return ~(uint64_t)0;
  const char *line = strstr(text, "\nCapBnd:");
  unsigned long long bits;
  if (!line || sscanf(line, "\nCapBnd:\t%llx", &bits) != 1) return ~(uint64_t)0;
  return (uint64_t)bits;
}

/* The executor's bounding set, read once at start: every child inherits it. */
static uint64_t executor_bounding = ~(uint64_t)0;

static const char *drop_to_sandbox(void) {
  for (int cap = 0; cap < 64; cap++) {
    if (!((executor_bounding >> cap) & 1)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
      if (errno == EINVAL) break; /* past the kernel's last capability */
      return "cannot empty the capability bounding set";
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return "cannot clear ambient capabilities";
  gid_t gid = SANDBOX_GID;
  if (setgroups(1, &gid) < 0) return "setgroups";
  if (setresgid(SANDBOX_GID, SANDBOX_GID, SANDBOX_GID) < 0) return "setresgid";
  if (setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID) < 0) return "setresuid";
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return "no_new_privs";
  uid_t ru, eu, su;
  gid_t rg, eg, sg;
  if (getresuid(&ru, &eu, &su) < 0 || ru != SANDBOX_UID || eu != SANDBOX_UID || su != SANDBOX_UID) return "uid check";
  if (getresgid(&rg, &eg, &sg) < 0 || rg != SANDBOX_GID || eg != SANDBOX_GID || sg != SANDBOX_GID) return "gid check";
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &header, data) < 0) return "capget";
  for (int i = 0; i < 2; i++) {
    if (data[i].effective || data[i].permitted || data[i].inheritable) return "capabilities remain";
  }
  for (int cap = 0; cap < 64; cap++) {
    if (!((executor_bounding >> cap) & 1)) continue;
    int held = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (held < 0 && errno == EINVAL) break;
    if (held != 0) return "bounding set check";
  }
  return NULL;
}

/*
 * Fast path: the container's pids cgroup counts only PID 1 and this process, so nothing else
 * (of any user) is alive, zombies included. Anything more, or no cgroup file: look in /proc.
 */
static int only_init_and_self(void) {
  static const char *paths[] = {"/sys/fs/cgroup/pids/pids.current", "/sys/fs/cgroup/pids.current"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    char text[32];
    ssize_t n = read_text(paths[i], text, sizeof text);
    if (n < 0) continue;
    if (n == 0) return 0;
    char *end;
    long count = strtol(text, &end, 10);
    if (end == text) return 0;
    return count <= (getpid() == 1 ? 1 : 2);
  }
  return 0;
}

/* Whether a process of `uid` other than `self` and PID 1 is alive (zombies do not count). */
static int user_alive(pid_t self, uid_t uid) {
  DIR *proc = opendir("/proc");
  if (!proc) return 0;
  int alive = 0;
  struct dirent *entry;
  while (!alive && (entry = readdir(proc)) != NULL) {
    char *end;
    long pid = strtol(entry->d_name, &end, 10);
    if (*end != '\0' || pid <= 1 || pid == self) continue;
    char path[64], text[2048];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    if (read_text(path, text, sizeof text) <= 0) continue;
    const char *state = strstr(text, "\nState:");
    const char *uids = strstr(text, "\nUid:");
    if (!state || !uids) continue;
    char s = 0;
    unsigned long r = 0, e = 0, sv = 0;
    if (sscanf(state, "\nState:\t%c", &s) != 1 || s == 'Z' || s == 'X') continue;
    if (sscanf(uids, "\nUid:\t%lu\t%lu\t%lu", &r, &e, &sv) != 3) continue;
    if (r == uid || e == uid || sv == uid) alive = 1;
  }
  closedir(proc);
  return alive;
}

/* Whether a process (other than this one) of the sandbox user is still alive. */
static int sandbox_alive(void) { return !only_init_and_self() && user_alive(getpid(), SANDBOX_UID); }

/* The session id of a live process of the sandbox user (0: not one, gone, or a zombie). */
static pid_t sandbox_session_of(long pid) {
  char path[64], text[2048];
  snprintf(path, sizeof path, "/proc/%ld/status", pid);
  if (read_text(path, text, sizeof text) <= 0) return 0;
  const char *uids = strstr(text, "\nUid:");
  unsigned long r = 0, e = 0, sv = 0;
  if (!uids || sscanf(uids, "\nUid:\t%lu\t%lu\t%lu", &r, &e, &sv) != 3) return 0;
  if (r != SANDBOX_UID && e != SANDBOX_UID && sv != SANDBOX_UID) return 0;
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  if (read_text(path, text, sizeof text) <= 0) return 0;
  /* "pid (comm) state ppid pgrp session ...": comm may hold anything, so start after its last ')'. */
  const char *close = strrchr(text, ')');
  char state = 0;
  int ppid = 0, pgrp = 0, sid = 0;
  if (!close || sscanf(close + 1, " %c %d %d %d", &state, &ppid, &pgrp, &sid) != 4) return 0;
  if (state == 'Z' || state == 'X') return 0;
  return sid > 0 ? (pid_t)sid : 0;
}

static int context_session(pid_t sid) {
  for (int i = 0; i < MAX_CONTEXTS; i++)
    if (C[i].used && C[i].pid > 0 && C[i].pid == sid) return 1;
  return 0;
}

static int contexts_alive(void) {
  for (int i = 0; i < MAX_CONTEXTS; i++)
    if (C[i].used && C[i].pid > 0) return 1;
  return 0;
}

/*
 * One round of a kill that spares sessions: SIGKILL to every live process of the sandbox user
 * whose session is `only` (when > 0), or else is not a live context's. Returns how many it
 * signalled (0: none is left). The caller holds euid = sandbox.
 */
static int kill_round(pid_t only) {
  DIR *proc = opendir("/proc");
  if (!proc) return 0;
  int signalled = 0;
  struct dirent *entry;
  pid_t self = getpid();
  while ((entry = readdir(proc)) != NULL) {
    char *end;
    long pid = strtol(entry->d_name, &end, 10);
    if (*end != '\0' || pid <= 1 || pid == self) continue;
    pid_t sid = sandbox_session_of(pid);
    if (!sid) continue;
    if (only > 0 ? sid != only : context_session(sid)) continue;
    if (kill((pid_t)pid, SIGKILL) == 0) signalled++;
  }
  closedir(proc);
  return signalled;
}

/*
 * SIGKILL to the process group `pgid` (when > 0), then to every process of the sandbox user
 * until none is left. Only the effective uid switches: kill() checks the sender's real or
 * effective uid against the target's real or saved uid, so with euid = sandbox this reaches
 * the sandbox user's processes; the real and saved uid stay 0, so no sandbox process can
 * signal or trace the executor meanwhile. kill(-1) skips PID 1 (Docker's init) and the caller.
 * Returns 0 when nothing of the sandbox user is left.
 */
static int kill_sandbox_as_user(pid_t pgid, int spare, pid_t only) {
  if (setresuid((uid_t)-1, SANDBOX_UID, (uid_t)-1) < 0) {
    diag("kill: cannot take the sandbox uid: %s", strerror(errno));
    return -1;
  }
  if (pgid > 0) kill(-pgid, SIGKILL);
  /* With live contexts (or one session to end), /proc is read each round: kill(-1) would end them. */
  int selective = only > 0 || (spare && contexts_alive());
  int rc = -1;
  for (int round = 0; round < KILL_ROUNDS; round++) {
    if (selective) {
      if (kill_round(only) == 0) {
        rc = 0;
        break;
      }
    } else {
      kill(-1, SIGKILL);
      if (!sandbox_alive()) {
        rc = 0;
        break;
      }
    }
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  if (setresuid((uid_t)-1, 0, (uid_t)-1) < 0) die("cannot take uid 0 back after a kill");
  if (rc != 0) diag("kill: processes of the sandbox user survived %d rounds", KILL_ROUNDS);
  return rc;
}

/* The end of a run, KILL, KILLALL, a standby's end: everything of the sandbox user but the contexts. */
static int kill_sandbox(pid_t pgid) { return kill_sandbox_as_user(pgid, 1, 0); }
/* The engine gone: everything of the sandbox user, contexts included. */
static int kill_everything(void) { return kill_sandbox_as_user(0, 0, 0); }
/* One context's session. */
static int kill_session(pid_t sid) { return kill_sandbox_as_user(0, 0, sid); }

/* ------------------------------------------------------------------ network counters */

static void net_bytes(uint64_t *rx, uint64_t *tx) {
  *rx = *tx = 0;
  DIR *dir = opendir("/sys/class/net");
  if (!dir) return;
  struct dirent *entry;
  while ((entry = readdir(dir)) != NULL) {
    if (entry->d_name[0] == '.' || strcmp(entry->d_name, "lo") == 0) continue;
    const char *names[2] = {"rx_bytes", "tx_bytes"};
    uint64_t *sums[2] = {rx, tx};
    for (int i = 0; i < 2; i++) {
      char path[512], text[64];
      snprintf(path, sizeof path, "/sys/class/net/%s/statistics/%s", entry->d_name, names[i]);
      if (read_text(path, text, sizeof text) <= 0) continue;
      *sums[i] += strtoull(text, NULL, 10);
    }
  }
  closedir(dir);
}

/*
 * The container's OOM kill counter (the kernel's count of processes the OOM killer ended in its
 * memory cgroup): cgroup v1 memory.oom_control or v2 memory.events, line "oom_kill N". Returns 0,
 * or -1 when neither file has it.
 */
static int oom_kills(uint64_t *count) {
  static const char *paths[] = {"/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    char text[1024];
    if (read_text(paths[i], text, sizeof text) <= 0) continue;
    for (const char *line = text; line; line = strchr(line, '\n')) {
      if (*line == '\n') line++;
      if (strncmp(line, "oom_kill ", 9) == 0) {
        *count = strtoull(line + 9, NULL, 10);
        return 0;
      }
    }
  }
  return -1;
}

/* ------------------------------------------------------------------ request fields */

static void free_strings(char **list) {
  if (!list) return;
  for (char **p = list; *p; p++) free(*p);
  free(list);
}

struct reader {
  const unsigned char *p;
  size_t n, off;
  const char *error;
};

static uint32_t rd32(struct reader *r) {
  if (r->error) return 0;
  if (r->n - r->off < 4) {
    r->error = "truncated request";
    return 0;
  }
  uint32_t v = get32(r->p + r->off);
  r->off += 4;
  return v;
}

static char *rdstr(struct reader *r) {
  uint32_t len = rd32(r);
  if (r->error) return NULL;
  if (r->n - r->off < len) {
    r->error = "truncated string";
    return NULL;
  }
  if (memchr(r->p + r->off, 0, len)) {
    r->error = "a string contains a NUL byte";
    return NULL;
  }
  char *s = malloc((size_t)len + 1);
  if (!s) die("out of memory");
  memcpy(s, r->p + r->off, len);
  s[len] = '\0';
  r->off += len;
  return s;
}

static char **rdlist(struct reader *r) {
  uint32_t count = rd32(r);
  if (r->error) return NULL;
  if (count > MAX_ITEMS) {
    r->error = "too many entries";
    return NULL;
  }
  char **list = calloc((size_t)count + 1, sizeof *list);
  if (!list) die("out of memory");
  for (uint32_t i = 0; i < count; i++) {
    list[i] = rdstr(r);
    if (r->error) {
      free_strings(list);
      return NULL;
    }
  }
  return list;
}

static void put_str(buf_t *b, const char *s) {
  unsigned char len[4];
  size_t n = strlen(s);
  put32(len, (uint32_t)n);
  buf_append(b, len, 4);
  buf_append(b, s, n);
}

static void put_list(buf_t *b, char *const *list) {
  uint32_t count = 0;
  while (list && list[count]) count++;
  unsigned char len[4];
  put32(len, count);
  buf_append(b, len, 4);
  for (uint32_t i = 0; i < count; i++) put_str(b, list[i]);
}

/* ------------------------------------------------------------------ children */

static void child_fail(int code, const char *what, int err) {
  char line[512];
  int n = snprintf(line, sizeof line, "isol8: %s%s%s\n", what, err ? ": " : "", err ? strerror(err) : "");
  if (n > 0) {
    ssize_t ignored = write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    (void)ignored;
  }
  _exit(code);
}

/*
 * The start of every child: default signals, its own session, the given descriptors as 0-4
 * (ctl and ready: -1 for none) and nothing else of the executor's, then the sandbox user with
 * nothing left.
 */
static void child_enter(int in, int out, int err, int ctl, int ready) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  /* SIGPIPE is ignored by the executor, and an ignored signal stays ignored across exec.
     (SIGCHLD has its default action: the executor only blocks it, for its signalfd.) */
  signal(SIGPIPE, SIG_DFL);
  setsid();
  /* Every pipe was made after 0, 1 and 2 were open; move ctl and ready above 4 first, so no
     dup2 below can overwrite them. */
  if (ctl >= 0 && ctl < 5 && (ctl = fcntl(ctl, F_DUPFD_CLOEXEC, 5)) < 0) _exit(126);
  if (ready >= 0 && ready < 5 && (ready = fcntl(ready, F_DUPFD_CLOEXEC, 5)) < 0) _exit(126);
  if (in < 0) in = devnull;
  if (in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(126);
  if (ctl >= 0 && dup2(ctl, 3) < 0) _exit(126);
  if (ready >= 0 && dup2(ready, 4) < 0) _exit(126);
  /* The descriptors above are the executor's: none goes further. */
  unsigned first = ready >= 0 ? 5u : ctl >= 0 ? 4u : 3u;
  if (syscall(SYS_close_range, first, ~0u, 0u) < 0) {
    for (unsigned fd = first; fd < 1024; fd++) close((int)fd);
  }
  const char *failed = drop_to_sandbox();
  if (failed) child_fail(126, failed, errno);
}

static int read_exact(int fd, void *data, size_t n) {
  unsigned char *p = data;
  while (n > 0) {
    ssize_t got = read(fd, p, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return -1;
    p += got;
    n -= (size_t)got;
  }
  return 0;
}

/*
 * In a child: the working directory, stdin from `stdin_path` when given (opened as the sandbox
 * user), then the program, its environment passed rather than set (so a vfork()ed child writes
 * nothing of the executor's memory). Never returns.
 */
static void exec_program(char *const *argv, char *const *envp, const char *cwd, const char *stdin_path) {
  if (chdir(cwd) < 0) child_fail(126, cwd, errno);
  if (stdin_path) {
    int fd = open(stdin_path, O_RDONLY);
    if (fd < 0 || dup2(fd, 0) < 0) child_fail(1, stdin_path, errno);
    if (fd != 0) close(fd);
  }
  execvpe(argv[0], argv, envp);
  int err = errno;
  child_fail(err == ENOENT ? 127 : 126, argv[0], err);
}

/*
 * The standby, in the child: wait for the GO message on fd 3 (the executor closing the pipe
 * instead means "not needed": exit quietly), set up stdin, directory and environment, exec.
 */
static void standby_main(int in, int out, int err, int ctl, int ready) {
  child_enter(in, out, err, ctl, ready);
  unsigned char len[4];
  if (read_exact(3, len, 4) < 0) _exit(0);
  uint32_t n = get32(len);
  if (n > MAX_FRAME) child_fail(126, "GO message too large", 0);
  unsigned char *msg = malloc(n ? n : 1);
  if (!msg || read_exact(3, msg, n) < 0) child_fail(126, "GO message truncated", 0);
  struct reader r = {msg, n, 0, NULL};
  uint32_t flags = rd32(&r);
  char **argv = rdlist(&r);
  char **envp = rdlist(&r);
  char *cwd = rdstr(&r);
  char *stdin_path = rdstr(&r);
  if (r.error || !argv || !argv[0]) child_fail(126, r.error ? r.error : "GO without argv", 0);
  if (!(flags & GO_KEEP_CTL)) {
    close(3);
    close(4);
  } else if (fcntl(3, F_SETFD, 0) < 0 || fcntl(4, F_SETFD, 0) < 0) {
    child_fail(126, "control pipe", errno);
  }
  /* A warm-start program keeps the stdin pipe: its own GO says what stdin the run gets. */
  const char *in_path = NULL;
  if (!(flags & GO_KEEP_CTL)) in_path = stdin_path[0] ? stdin_path : (flags & GO_STDIN) ? NULL : "/dev/null";
  exec_program(argv, envp, cwd[0] ? cwd : "/", in_path);
}

/*
 * A run's program without a warm start, in a vfork()ed child: it shares the executor's memory
 * until it execs, so it writes nothing but its own stack (the environment is passed to
 * execvpe, not set) and never returns.
 */
static void program_main(void) {
  child_enter(R.stdin_r, R.out_w, R.err_w, -1, -1);
  exec_program(R.argv, R.envp, R.cwd, R.stdin_path);
}

static int wipe_main(void);

/* The engine's wipe (PROTOCOL.md, "Wipe mode"): a RUN of exactly `<this binary> --wipe`. */
static int is_wipe(char *const *argv) {
  return self_path && argv[0] && argv[1] && !argv[2] && strcmp(argv[0], self_path) == 0 && strcmp(argv[1], "--wipe") == 0;
}

/*
 * vfork: the executor waits only for the exec, and no copy of its address space is made.
 * The wipe runs this binary's own code, so its child is forked and runs it without an exec
 * (the same steps as the program would take; an exec and a new process's start cost ~1 ms of
 * CPU on every release of a pool's container). fork, not vfork: that child runs code.
 */
static pid_t spawn_program(void) {
  if (is_wipe(R.argv)) {
    pid_t pid = fork();
    if (pid == 0) {
      child_enter(R.stdin_r, R.out_w, R.err_w, -1, -1);
      if (chdir(R.cwd) < 0) child_fail(126, R.cwd, errno);
      _exit(wipe_main());
    }
    return pid;
  }
  pid_t pid = vfork();
  if (pid == 0) program_main();
  return pid;
}

/* ------------------------------------------------------------------ the files tar */

/* A numeric tar header field: octal text, or GNU base-256 for large values. */
static uint64_t tar_number(const unsigned char *p, size_t n) {
  uint64_t v = 0;
  if (p[0] & 0x80) {
    for (size_t i = 1; i < n; i++) v = (v << 8) | p[i];
    return v;
  }
  for (size_t i = 0; i < n && p[i]; i++) {
    if (p[i] == ' ') continue;
    if (p[i] < '0' || p[i] > '7') break;
    v = (v << 3) | (uint64_t)(p[i] - '0');
  }
  return v;
}

static void unpack_fail(const char *what, const char *path, int err) {
  char line[768];
  snprintf(line, sizeof line, "could not unpack the request files: %s%s%s", what, path ? " " : "", path ? path : "");
  child_fail(2, line, err);
}

/*
 * Opens the parent directory of `path` (relative to /, already checked: no "..", no empty part),
 * creating missing directories, never following a symbolic link. Returns the fd and sets *leaf.
 */
static int open_parent(char *path, char **leaf, int create) {
  int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) unpack_fail("open /", NULL, errno);
  char *part = path;
  for (char *slash; (slash = strchr(part, '/')) != NULL; part = slash + 1) {
    *slash = '\0';
    int next = openat(dir, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && create) {
      if (mkdirat(dir, part, 0755) < 0 && errno != EEXIST) unpack_fail("mkdir", part, errno);
      next = openat(dir, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0) unpack_fail(errno == ELOOP || errno == ENOTDIR ? "not a directory (or a symbolic link):" : "open", part, errno == ELOOP ? 0 : errno);
    *slash = '/';
    close(dir);
    dir = next;
  }
  *leaf = part;
  return dir;
}

/*
 * Unpacks the tar on stdin at "/", as the sandbox user (in a forked child: no tar binary to
 * start). Regular files and directories only, names from ustar (prefix + name), pax `path`
 * records or GNU long names; a name with "..", an empty part or a leading "/" is refused, and
 * no symbolic link on the way is followed. An existing file is replaced (unlinked first).
 */
static void unpack_main(int in, int out, int err) {
  child_enter(in, out, err, -1, -1);
  umask(022);
  unsigned char h[512];
  char *long_name = NULL;
  static unsigned char chunk[65536];
  for (;;) {
    if (read_exact(0, h, 512) < 0) unpack_fail("the archive ends early", NULL, 0);
    int zero = 1;
    for (int i = 0; i < 512 && zero; i++) zero = h[i] == 0;
    if (zero) _exit(0); /* the end-of-archive block (a second one may follow: not needed) */
    uint64_t sum = 0;
    for (int i = 0; i < 512; i++) sum += (i >= 148 && i < 156) ? ' ' : h[i];
    if (sum != tar_number(h + 148, 8)) unpack_fail("bad header checksum", NULL, 0);
    uint64_t size = tar_number(h + 124, 12);
    uint64_t padded = (size + 511) & ~(uint64_t)511;
    char type = (char)h[156];
    if (type == 'x' || type == 'L' || type == 'g') {
      if (size > (1u << 20)) unpack_fail("extended header too large", NULL, 0);
      char *data = malloc(padded + 1);
      if (!data || read_exact(0, data, padded) < 0) unpack_fail("the archive ends early", NULL, 0);
      data[size] = '\0';
      if (type == 'L') {
        free(long_name);
        long_name = strdup(data);
      } else if (type == 'x') {
        /* Records "<len> <key>=<value>\n"; only path matters. */
        for (size_t at = 0; at < size;) {
          char *end;
          unsigned long len = strtoul(data + at, &end, 10);
          if (len == 0 || at + len > size || *end != ' ') unpack_fail("bad pax header", NULL, 0);
          char *key = end + 1;
          if (strncmp(key, "path=", 5) == 0) {
            free(long_name);
            long_name = strndup(key + 5, (size_t)(data + at + len - 1 - (key + 5)));
          }
          at += len;
        }
      }
      free(data);
      continue;
    }
    char name[512];
    if (long_name) {
      snprintf(name, sizeof name, "%s", long_name);
      if (strlen(long_name) >= sizeof name) unpack_fail("name too long", NULL, 0);
      free(long_name);
      long_name = NULL;
    } else if (memcmp(h + 257, "ustar", 5) == 0 && h[345]) {
      snprintf(name, sizeof name, "%.155s/%.100s", (const char *)h + 345, (const char *)h);
    } else {
      snprintf(name, sizeof name, "%.100s", (const char *)h);
    }
    size_t nlen = strlen(name);
    while (nlen > 0 && name[nlen - 1] == '/') name[--nlen] = '\0';
    int bad = nlen == 0 || name[0] == '/';
    for (char *p = name; !bad && *p;) {
      char *slash = strchr(p, '/');
      size_t plen = slash ? (size_t)(slash - p) : strlen(p);
      bad = plen == 0 || (plen == 2 && p[0] == '.' && p[1] == '.') || (plen == 1 && p[0] == '.');
      p = slash ? slash + 1 : p + plen;
    }
    if (bad) unpack_fail("refused name", name, 0);
    mode_t mode = (mode_t)(tar_number(h + 100, 8) & 0777);
    char *leaf;
    int dir = open_parent(name, &leaf, 1);
    if (type == '5') {
      if (mkdirat(dir, leaf, mode | 0700) < 0 && errno != EEXIST) unpack_fail("mkdir", name, errno);
      close(dir);
      if (size) unpack_fail("a directory with content", name, 0);
      continue;
    }
    if (type != '0' && type != '\0' && type != '7') unpack_fail("unsupported entry type (only files and directories)", name, 0);
    if (unlinkat(dir, leaf, 0) < 0 && errno != ENOENT) unpack_fail("replace", name, errno);
    int fd = openat(dir, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) unpack_fail("create", name, errno);
    close(dir);
    for (uint64_t left = padded; left > 0;) {
      size_t want = left < sizeof chunk ? (size_t)left : sizeof chunk;
      if (read_exact(0, chunk, want) < 0) unpack_fail("the archive ends early in", name, 0);
      uint64_t done = padded - left;
      size_t keep = done >= size ? 0 : (size - done < want ? (size_t)(size - done) : want);
      for (size_t off = 0; off < keep;) {
        ssize_t w = write(fd, chunk + off, keep - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) unpack_fail("write", name, errno);
        off += (size_t)w;
      }
      left -= want;
    }
    if (close(fd) < 0) unpack_fail("write", name, errno);
  }
}

/* ------------------------------------------------------------------ the standby, executor side */

/* Answers a pending PREPARE: DONE while the standby lives (it is ready, or a run took it), else ERROR. */
static void prepare_answer(void) {
  close_fd(&S.ready_r);
  if (!S.prepare_pending) return;
  S.prepare_pending = 0;
  if (S.pid > 0) frame(F_DONE, S.prepare_id, NULL, 0);
  else frame_text(F_ERROR, S.prepare_id, "the warm-start program ended before it was ready");
}

static void standby_forget(void) {
  S.pid = 0;
  prepare_answer();
  close_fd(&S.ctl_w);
  close_fd(&S.in_w);
  close_fd(&S.out_r);
  close_fd(&S.err_r);
  close_fd(&S.out_w);
  close_fd(&S.err_w);
}

/* Forks the standby (idle only). Returns 0, or -1 when the fork failed (the run will say so). */
/* Makes n pipes (close-on-exec); on failure closes what it made and returns -1. */
static int make_pipes(int (*pipes)[2], int n) {
  for (int i = 0; i < n; i++) {
    if (pipe2(pipes[i], O_CLOEXEC) == 0) continue;
    while (i-- > 0) close(pipes[i][0]), close(pipes[i][1]);
    return -1;
  }
  return 0;
}

static int standby_make(void) {
  if (S.pid > 0) return 0;
  standby_forget();
  enum { CTL, IN, OUT, ERR, READY, N };
  int p[N][2];
  if (make_pipes(p, N) < 0) return -1;
  /* A GO is written whole without waiting for the reader (one that never reads cannot stall
     the executor): it is never longer than half the pipe's room (start_run, send_go). */
  int room = fcntl(p[CTL][1], F_SETPIPE_SZ, CTL_PIPE);
  if (room < 0) room = fcntl(p[CTL][1], F_GETPIPE_SZ);
  if (room > 0) max_go = (size_t)room / 2;
  pid_t pid = fork();
  if (pid == 0) standby_main(p[IN][0], p[OUT][1], p[ERR][1], p[CTL][0], p[READY][1]);
  /* The child's ends. */
  close(p[CTL][0]), close(p[IN][0]), close(p[READY][1]);
  if (pid < 0) {
    close(p[CTL][1]), close(p[IN][1]), close(p[OUT][0]), close(p[OUT][1]), close(p[ERR][0]), close(p[ERR][1]), close(p[READY][0]);
    return -1;
  }
  S = (struct standby){pid, p[CTL][1], p[IN][1], p[OUT][0], p[ERR][0], p[OUT][1], p[ERR][1], p[READY][0], 0, 0};
  set_nonblock(S.ctl_w);
  set_nonblock(S.out_r);
  set_nonblock(S.err_r);
  set_nonblock(S.ready_r);
  return 0;
}

/* Ends the standby (idle only: it is the only process of the sandbox user then). */
static void standby_discard(void) {
  if (S.pid > 0) {
    kill_sandbox(0);
    waitpid(S.pid, NULL, 0);
  }
  standby_forget();
}

static size_t list_size(char *const *list) {
  size_t n = 4;
  for (; list && *list; list++) n += 4 + strlen(*list);
  return n;
}

/* The size of a GO message. */
static size_t go_size(char *const *argv, char *const *envp, const char *cwd, const char *stdin_path) {
  return 4 + 4 + list_size(argv) + list_size(envp) + 4 + strlen(cwd ? cwd : "/") + 4 + strlen(stdin_path ? stdin_path : "");
}

/* Writes one GO message into a standby's control pipe, whole (it fits: see standby_make). */
static int send_go(int fd, uint32_t flags, char *const *argv, char *const *envp, const char *cwd, const char *stdin_path) {
  if (go_size(argv, envp, cwd, stdin_path) > max_go) return -1;
  buf_t b = {0};
  unsigned char word[4];
  put32(word, 0);
  buf_append(&b, word, 4); /* the length, below */
  put32(word, flags);
  buf_append(&b, word, 4);
  put_list(&b, argv);
  put_list(&b, envp);
  put_str(&b, cwd ? cwd : "/");
  put_str(&b, stdin_path ? stdin_path : "");
  put32(b.p, (uint32_t)(b.len - 4));
  int rc = 0;
  for (size_t off = 0; off < b.len;) {
    ssize_t n = write(fd, b.p + off, b.len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      rc = -1;
      break;
    }
    off += (size_t)n;
  }
  buf_free(&b);
  return rc;
}

/* ------------------------------------------------------------------ a run */

static void init_run(void) {
  memset(&R, 0, sizeof R);
  R.tar_in = R.stdin_r = R.stdin_w = R.out_r = R.err_r = R.out_w = R.err_w = R.ctl_w = -1;
  R.phase = IDLE;
}

static void reset_run(void) {
  free_strings(R.argv);
  free_strings(R.envp);
  free(R.cwd);
  free(R.stdin_path);
  buf_free(&R.tar_q);
  buf_free(&R.stdin_q);
  close_fd(&R.tar_in);
  close_fd(&R.stdin_r);
  close_fd(&R.stdin_w);
  close_fd(&R.out_r);
  close_fd(&R.err_r);
  close_fd(&R.out_w);
  close_fd(&R.err_w);
  close_fd(&R.ctl_w);
  init_run();
}

static void send_exit(void) {
  unsigned char p[EXIT_SIZE];
  memset(p, 0, sizeof p);
  uint32_t flags = 0;
  int kind = KIND_EXITED, value = 0;
  if (R.start_failed) {
    flags |= EX_START_FAILED;
    value = R.status;
  } else if (WIFSIGNALED(R.status)) {
    kind = KIND_SIGNALED;
    value = WTERMSIG(R.status);
  } else {
    value = WEXITSTATUS(R.status);
  }
  if (R.kill_reason == EX_TIMED_OUT) flags |= EX_TIMED_OUT;
  if (R.kill_reason == EX_KILLED) flags |= EX_KILLED;
  if (R.output_cut) flags |= EX_OUTPUT_CUT;
  if (R.warm) flags |= EX_WARM;
  /* Whether the program left rich outputs to read back: without them the engine skips the read. */
  struct stat outputs;
  if (lstat(RICH_OUTPUTS_DIR, &outputs) == 0) flags |= EX_RICH_OUTPUTS;
  /* Every process of the run is dead by now: no OOM kill of this run can come after this read. */
  uint64_t oom = 0, oom_delta = 0;
  if (R.oom_known && oom_kills(&oom) == 0) {
    flags |= EX_OOM_COUNTED;
    oom_delta = oom >= R.oom0 ? oom - R.oom0 : 0;
  }
  uint64_t rx = 0, tx = 0;
  if (R.flags & RUN_MEASURE) {
    flags |= EX_USAGE;
    net_bytes(&rx, &tx);
    rx = rx >= R.rx0 ? rx - R.rx0 : 0;
    tx = tx >= R.tx0 ? tx - R.tx0 : 0;
  }
  p[0] = (unsigned char)kind;
  p[1] = (unsigned char)flags;
  put32(p + 4, (uint32_t)value);
  put64(p + 8, (uint64_t)R.ru.ru_utime.tv_sec * 1000000u + (uint64_t)R.ru.ru_utime.tv_usec);
  put64(p + 16, (uint64_t)R.ru.ru_stime.tv_sec * 1000000u + (uint64_t)R.ru.ru_stime.tv_usec);
  put64(p + 24, (uint64_t)R.ru.ru_maxrss);
  put64(p + 32, R.has_started ? us_between(&R.started, &R.ended) : 0);
  put64(p + 40, rx);
  put64(p + 48, tx);
  put32(p + 56, oom_delta > 0xffffffffu ? 0xffffffffu : (uint32_t)oom_delta);
  frame(F_EXIT, R.id, p, sizeof p);
  for (unsigned i = 0; i < R.nacks; i++) frame(F_DONE, R.acks[i], NULL, 0);
}

static void read_output(int *fd, uint8_t type, int until_empty);

/* The program (or the unpacking) ended or never started: kill what is left, then drain the pipes. */
static void begin_drain(void) {
  now(&R.ended);
  kill_sandbox(0);
  close_fd(&R.stdin_w);
  close_fd(&R.tar_in);
  close_fd(&R.out_w);
  close_fd(&R.err_w);
  close_fd(&R.ctl_w);
  R.phase = DRAINING;
  now(&R.drain_until);
  add_ms(&R.drain_until, DRAIN_MS);
  /* Usually everything is already there, EOF included: take it now rather than after a poll. */
  read_output(&R.out_r, F_STDOUT, 1);
  read_output(&R.err_r, F_STDERR, 1);
}

static void finish_if_drained(void) {
  if (R.phase != DRAINING || R.out_r >= 0 || R.err_r >= 0) return;
  send_exit();
  reset_run();
}

/* Writes an executor message into the run's stderr, as the runner's shell would have. */
static void run_stderr(const char *text) { frame_text(F_STDERR, R.id, text); }

static void start_failed(int status, const char *text) {
  run_stderr(text);
  R.start_failed = 1;
  R.status = status;
  begin_drain();
}

/* Starts the program: a GO to the warm start, or a fresh child. */
static void start_program(void) {
  now(&R.started);
  R.has_started = 1;
  if (R.flags & RUN_MEASURE) net_bytes(&R.rx0, &R.tx0);
  if (R.warm) {
    uint32_t go = GO_WARM | ((R.flags & RUN_STDIN) ? GO_STDIN : 0);
    if (R.exited || send_go(R.ctl_w, go, R.argv, R.envp, R.cwd, R.stdin_path) < 0) {
      start_failed(126, "isol8: cannot start the program: its process ended before it started\n");
      return;
    }
    close_fd(&R.ctl_w);
  } else {
    R.pid = spawn_program();
    close_fd(&R.stdin_r);
    if (R.pid < 0) {
      char line[256];
      snprintf(line, sizeof line, "isol8: cannot start the program: %s\n", strerror(errno));
      R.pid = 0;
      start_failed(126, line);
      return;
    }
  }
  /* Only the program holds the write ends now: its exit (and its children's) is the pipes' EOF. */
  close_fd(&R.out_w);
  close_fd(&R.err_w);
  if (!(R.flags & RUN_STDIN)) close_fd(&R.stdin_w);
  R.phase = RUNNING;
}

/* The time limit, a KILL or a KILLALL: end the process group, then everything of the sandbox user. */
static void kill_run(int reason) {
  if (R.phase != UNPACKING && R.phase != RUNNING) return;
  if (!R.kill_reason) R.kill_reason = reason;
  kill_sandbox(R.phase == RUNNING ? R.pid : R.tar_pid);
}

/* The program's environment: the container's (this process's), with the request's entries over it. */
static char **merge_env(char **request) {
  size_t base = 0, extra = 0;
  while (environ && environ[base]) base++;
  while (request[extra]) extra++;
  char **env = calloc(base + extra + 1, sizeof *env);
  if (!env) die("out of memory");
  size_t n = 0;
  for (size_t i = 0; i < base; i++) {
    const char *eq = strchr(environ[i], '=');
    size_t klen = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
    int overridden = 0;
    for (size_t j = 0; j < extra && !overridden; j++) {
      if (strncmp(request[j], environ[i], klen) == 0 && request[j][klen] == '=') overridden = 1;
    }
    if (!overridden) env[n++] = strdup(environ[i]);
  }
  for (size_t j = 0; j < extra; j++) {
    env[n++] = request[j];
    request[j] = NULL;
  }
  for (size_t i = 0; i < n; i++)
    if (!env[i]) die("out of memory");
  free(request);
  return env;
}

/* argv, env and cwd of a RUN or PREPARE; NULL and an error frame when malformed. */
static const char *read_command(struct reader *r, char ***argv, char ***envp, char **cwd) {
  *argv = rdlist(r);
  char **env = rdlist(r);
  *cwd = rdstr(r);
  if (!r->error && (!*argv || !(*argv)[0] || !(*argv)[0][0])) r->error = "argv is empty";
  for (char **e = env; !r->error && e && *e; e++) {
    if ((*e)[0] == '=' || !strchr(*e, '=')) r->error = "an env entry is not NAME=value";
  }
  if (r->error) {
    free_strings(env);
    return r->error;
  }
  *envp = merge_env(env);
  if ((*cwd)[0] == '\0') {
    free(*cwd);
    *cwd = strdup("/");
  }
  return NULL;
}

/* PREPARE: the standby execs a runtime's warm-start program, which waits for the next GO itself. */
static void prepare(const unsigned char *p, size_t n, uint32_t id) {
  if (R.phase != IDLE) {
    frame_text(F_ERROR, id, "busy: PREPARE comes between runs");
    return;
  }
  struct reader r = {p, n, 0, NULL};
  char **argv = NULL, **envp = NULL, *cwd = NULL;
  const char *error = read_command(&r, &argv, &envp, &cwd);
  if (!error && r.off != r.n) error = "trailing bytes after the request";
  if (!error) {
    standby_discard();
    if (standby_make() < 0) {
      error = "cannot fork the warm-start program";
    } else if (send_go(S.ctl_w, GO_KEEP_CTL, argv, envp, cwd, "") < 0) {
      standby_discard();
      error = "the warm-start program's process ended at once";
    } else {
      /* Answered when the program closes its fd 4 (ready), dies, or a run takes it. */
      S.prepare_id = id;
      S.prepare_pending = 1;
    }
  }
  free_strings(argv);
  free_strings(envp);
  free(cwd);
  if (error) frame_text(F_ERROR, id, error);
}

/* ------------------------------------------------------------------ contexts */

static struct context *ctx_find(uint32_t id) {
  for (int i = 0; i < MAX_CONTEXTS; i++)
    if (C[i].used && C[i].id == id) return &C[i];
  return NULL;
}

/* The kernel, in the child: fds 3 (cells in) and 4 (messages out) stay open across exec. */
static void kernel_main(int out, int err, int in, int msg, char *const *argv, char *const *envp, const char *cwd) {
  child_enter(-1, out, err, in, msg);
  if (fcntl(3, F_SETFD, 0) < 0 || fcntl(4, F_SETFD, 0) < 0) child_fail(126, "context pipes", errno);
  exec_program(argv, envp, cwd, NULL);
}

/* CTX_START: forks the kernel. Answered with DONE (started) or ERROR. */
static void ctx_start(const unsigned char *p, size_t n, uint32_t id) {
  if (id == 0 || ctx_find(id)) {
    frame_text(F_ERROR, id, "a context with this id exists");
    return;
  }
  struct context *c = NULL;
  for (int i = 0; i < MAX_CONTEXTS && !c; i++)
    if (!C[i].used) c = &C[i];
  if (!c) {
    frame_text(F_ERROR, id, "too many contexts in this sandbox");
    return;
  }
  struct reader r = {p, n, 0, NULL};
  char **argv = NULL, **envp = NULL, *cwd = NULL;
  const char *error = read_command(&r, &argv, &envp, &cwd);
  if (!error && r.off != r.n) error = "trailing bytes after the request";
  enum { IN, OUT, ERR, MSG, N };
  int q[N][2];
  if (!error && make_pipes(q, N) < 0) error = "cannot make the context's pipes";
  if (!error) {
    pid_t pid = fork();
    if (pid == 0) kernel_main(q[OUT][1], q[ERR][1], q[IN][0], q[MSG][1], argv, envp, cwd);
    close(q[IN][0]), close(q[OUT][1]), close(q[ERR][1]), close(q[MSG][1]);
    if (pid < 0) {
      close(q[IN][1]), close(q[OUT][0]), close(q[ERR][0]), close(q[MSG][0]);
      error = "cannot fork the context's kernel";
    } else {
      memset(c, 0, sizeof *c);
      *c = (struct context){1, id, pid, 0, 0, q[IN][1], q[OUT][0], q[ERR][0], q[MSG][0], {0}, {0, 0}};
      set_nonblock(c->in_w);
      set_nonblock(c->out_r);
      set_nonblock(c->err_r);
      set_nonblock(c->msg_r);
      frame(F_DONE, id, NULL, 0);
    }
  }
  free_strings(argv);
  free_strings(envp);
  free(cwd);
  if (error) frame_text(F_ERROR, id, error);
}

/* Reads what one of a context's pipes holds now; until_empty ignores the output queue's bound
   (a pipe holds little), so everything written before a message goes out ahead of it. */
static void ctx_read(int *fd, uint8_t type, uint32_t id, int until_empty) {
  unsigned char chunk[READ_CHUNK];
  for (int i = 0; *fd >= 0 && (until_empty || (i < 4 && buf_pending(&out_q) < OUT_HIGH_WATER)); i++) {
    ssize_t n = read(*fd, chunk, sizeof chunk);
    if (n > 0) {
      frame(type, id, chunk, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    close_fd(fd);
  }
}

/* A message of the kernel: its output first (the kernel flushed it before writing the message). */
static void ctx_read_messages(struct context *c) {
  ctx_read(&c->out_r, F_CTX_STDOUT, c->id, 1);
  ctx_read(&c->err_r, F_CTX_STDERR, c->id, 1);
  ctx_read(&c->msg_r, F_CTX_MSG, c->id, 0);
}

/* The kernel is reaped and its pipes are closed (or the drain gave up): CTX_EXIT, the slot freed. */
static void ctx_finish_if_drained(struct context *c, const struct timespec *t) {
  if (!c->used || !c->reaped) return;
  if (c->out_r >= 0 || c->err_r >= 0 || c->msg_r >= 0) {
    if (ms_between(t, &c->drain_until) > 0) return;
    close_fd(&c->out_r), close_fd(&c->err_r), close_fd(&c->msg_r);
  }
  unsigned char p[8] = {0};
  int signaled = WIFSIGNALED(c->status);
  p[0] = signaled ? KIND_SIGNALED : KIND_EXITED;
  put32(p + 4, (uint32_t)(signaled ? WTERMSIG(c->status) : WEXITSTATUS(c->status)));
  frame(F_CTX_EXIT, c->id, p, sizeof p);
  close_fd(&c->in_w);
  buf_free(&c->in_q);
  c->used = 0;
}

/* The kernel was reaped: the rest of its session goes too, then its pipes drain. */
static void ctx_reaped(struct context *c, int status) {
  pid_t sid = c->pid;
  c->status = status;
  c->reaped = 1;
  c->pid = 0;
  kill_session(sid);
  now(&c->drain_until);
  add_ms(&c->drain_until, DRAIN_MS);
}

/* CTX_SIGNAL: SIGINT to the kernel's process group (interrupt a cell); SIGKILL ends its session. */
static void ctx_signal(const unsigned char *p, size_t n, uint32_t id) {
  struct context *c = ctx_find(id);
  if (!c || n != 4) {
    frame_text(F_ERROR, id, c ? "CTX_SIGNAL takes a u32 signal" : "no such context");
    return;
  }
  uint32_t sig = get32(p);
  if (sig != SIGINT && sig != SIGKILL && sig != SIGTERM) {
    frame_text(F_ERROR, id, "CTX_SIGNAL takes SIGINT, SIGTERM or SIGKILL");
    return;
  }
  if (c->pid <= 0) return; /* already ended: its CTX_EXIT is on the way */
  if (sig == SIGKILL) {
    kill_session(c->pid);
    return;
  }
  if (setresuid((uid_t)-1, SANDBOX_UID, (uid_t)-1) < 0) return;
  kill(-c->pid, (int)sig);
  if (setresuid((uid_t)-1, 0, (uid_t)-1) < 0) die("cannot take uid 0 back after a signal");
}

static void ctx_send(const unsigned char *p, size_t n, uint32_t id) {
  struct context *c = ctx_find(id);
  if (!c) {
    frame_text(F_ERROR, id, "no such context");
    return;
  }
  if (c->in_w >= 0 && n > 0) buf_append(&c->in_q, p, n);
}

static void ctx_reap(pid_t pid, int status) {
  for (int i = 0; i < MAX_CONTEXTS; i++)
    if (C[i].used && C[i].pid == pid) ctx_reaped(&C[i], status);
}

static void reap(void);

static void start_run(const unsigned char *p, size_t n, uint32_t id) {
  struct reader r = {p, n, 0, NULL};
  R.id = id;
  R.flags = rd32(&r);
  R.time_limit_ms = rd32(&r);
  const char *error = read_command(&r, &R.argv, &R.envp, &R.cwd);
  if (!error) R.stdin_path = rdstr(&r);
  if (!error && r.error) error = r.error;
  if (!error && r.off != r.n) error = "trailing bytes after the request";
  if (error) {
    frame_text(F_ERROR, id, error);
    reset_run();
    return;
  }
  if (R.stdin_path[0] == '\0') {
    free(R.stdin_path);
    R.stdin_path = NULL;
  }
  now(&R.received);
  R.oom_known = oom_kills(&R.oom0) == 0;
  R.phase = UNPACKING;
  /* A prepared standby becomes this run's process when the run asks for a warm start; a run
     that does not gets a fresh process, and the standby (the only process of the sandbox user
     between runs) is ended. */
  reap();
  if (S.pid > 0 && (!(R.flags & RUN_WARM) || go_size(R.argv, R.envp, R.cwd, R.stdin_path) > max_go)) standby_discard();
  if (S.pid > 0) {
    prepare_answer(); /* a run took it: the PREPARE is done */
    R.warm = 1;
    R.pid = S.pid;
    R.ctl_w = S.ctl_w;
    R.stdin_w = S.in_w;
    R.out_r = S.out_r;
    R.err_r = S.err_r;
    R.out_w = S.out_w;
    R.err_w = S.err_w;
    S = NO_STANDBY;
  } else {
    int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}}; /* stdout, stderr, stdin (with STDIN only) */
    if (make_pipes(p, (R.flags & RUN_STDIN) ? 3 : 2) < 0) die("pipe");
    R.out_r = p[0][0];
    R.out_w = p[0][1];
    R.err_r = p[1][0];
    R.err_w = p[1][1];
    R.stdin_r = p[2][0];
    R.stdin_w = p[2][1];
    set_nonblock(R.out_r);
    set_nonblock(R.err_r);
  }
  if (R.stdin_w >= 0) set_nonblock(R.stdin_w);

  if (!(R.flags & RUN_FILES)) {
    start_program();
    return;
  }
  /* The request's files: unpacked by a child as the sandbox user, fed from FILES frames. */
  int tin[2];
  if (pipe2(tin, O_CLOEXEC) < 0) die("pipe");
  R.tar_pid = fork();
  if (R.tar_pid == 0) unpack_main(tin[0], R.out_w, R.err_w);
  close(tin[0]);
  if (R.tar_pid < 0) {
    close(tin[1]);
    R.tar_pid = 0;
    start_failed(125, "isol8: could not unpack the request files\n");
    return;
  }
  R.tar_in = tin[1];
  set_nonblock(R.tar_in);
}

static void handle_frame(uint8_t type, const unsigned char *p, uint32_t n) {
  if (n < 4) {
    frame_text(F_ERROR, 0, "a frame without a request id");
    return;
  }
  uint32_t id = get32(p);
  p += 4;
  n -= 4;
  int current = R.phase != IDLE && id == R.id;
  switch (type) {
    case F_RUN:
      if (R.phase != IDLE) {
        frame_text(F_ERROR, id, "busy: one execution at a time");
        return;
      }
      start_run(p, n, id);
      return;
    case F_FILES:
      if (!current || R.files_done || !(R.flags & RUN_FILES)) return; /* a stale or late chunk */
      if (n == 0) {
        R.files_done = 1;
      } else if (R.phase == UNPACKING && R.tar_in >= 0) {
        buf_append(&R.tar_q, p, n);
      }
      return;
    case F_STDIN:
      if (!current || R.stdin_done || !(R.flags & RUN_STDIN)) return;
      if (n == 0) {
        R.stdin_done = 1;
      } else if (R.phase == UNPACKING || R.stdin_w >= 0) {
        buf_append(&R.stdin_q, p, n);
      }
      return;
    case F_KILL:
      if (current) kill_run(EX_KILLED);
      return;
    case F_KILLALL:
      if (R.phase == IDLE) {
        standby_discard();
        kill_sandbox(0);
        frame(F_DONE, id, NULL, 0);
        return;
      }
      if (R.phase != DRAINING) kill_run(EX_KILLED);
      if (R.nacks < sizeof R.acks / sizeof R.acks[0]) R.acks[R.nacks++] = id;
      else frame(F_DONE, id, NULL, 0);
      return;
    case F_PING:
      frame(F_PONG, id, p, n);
      return;
    case F_PREPARE:
      prepare(p, n, id);
      return;
    case F_CTX_START:
      ctx_start(p, n, id);
      return;
    case F_CTX_SEND:
      ctx_send(p, n, id);
      return;
    case F_CTX_SIGNAL:
      ctx_signal(p, n, id);
      return;
    default:
      frame_text(F_ERROR, id, "unknown frame type");
      return;
  }
}

static void read_requests(void) {
  for (;;) {
    buf_reserve(&in_q, READ_CHUNK);
    ssize_t n = read(0, in_q.p + in_q.len, in_q.cap - in_q.len);
    if (n > 0) {
      in_q.len += (size_t)n;
      break;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    /* stdin closed: nobody will send another request. */
    if (R.phase == UNPACKING || R.phase == RUNNING) kill_run(EX_KILLED);
    kill_everything();
    flush_out();
    exit(0);
  }
  while (buf_pending(&in_q) >= 5) {
    const unsigned char *h = in_q.p + in_q.off;
    uint32_t len = get32(h + 1);
    if (len > MAX_FRAME) {
      frame_text(F_ERROR, 0, "frame too large: the stream cannot be resynchronised");
      flush_out();
      diag("frame of %u bytes refused", len);
      exit(2);
    }
    if (buf_pending(&in_q) < 5 + (size_t)len) break;
    handle_frame(h[0], h + 5, len);
    buf_consume(&in_q, 5 + (size_t)len);
  }
}

/* ------------------------------------------------------------------ wipe mode */

/*
 * `isol8-executor --wipe`: run by the engine as an ordinary program (the sandbox user, no
 * capability) to return a used container to a clean state, instead of a shell script that starts
 * a dozen programs. Kills every other process of the user, empties /sandbox, /tmp, /dev/shm and
 * /dev/mqueue (also directories the program made read-only), removes the user's System V IPC
 * objects, then checks that nothing is left. Exit 0: clean; 1: something is left (named on
 * stderr); the engine then destroys the container.
 */
static int wipe_failed;

static void wipe_note(const char *what, const char *name, int err) {
  fprintf(stderr, "isol8-wipe: %s %s%s%s\n", what, name, err ? ": " : "", err ? strerror(err) : "");
  wipe_failed = 1;
}

/* Deletes everything inside the directory `dir` (an fd, closed here), depth first, no link followed. */
static void wipe_tree(int dir, const char *name) {
  DIR *d = fdopendir(dir);
  if (!d) {
    wipe_note("cannot read", name, errno);
    close(dir);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno == ENOENT) continue;
    if (errno != EISDIR && errno != EPERM) {
      wipe_note("cannot remove", e->d_name, errno);
      continue;
    }
    /* A directory: make it ours to empty (the program may have made it read-only), empty, remove.
       (fchmodat follows a symbolic link, but this is a directory: unlink took every link.) */
    fchmodat(dirfd(d), e->d_name, 0700, 0);
    int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
      wipe_note("cannot open", e->d_name, errno);
      continue;
    }
    wipe_tree(sub, e->d_name);
    if (unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT) wipe_note("cannot remove", e->d_name, errno);
  }
  closedir(d);
}

/* Removes the user's System V IPC objects of one kind, listed in /proc/sysvipc/<kind>; returns how many are left. */
static int wipe_ipc(const char *kind) {
  char path[64];
  snprintf(path, sizeof path, "/proc/sysvipc/%s", kind);
  FILE *f = fopen(path, "re");
  if (!f) return 0;
  char line[512];
  int left = 0;
  if (!fgets(line, sizeof line, f)) {
    fclose(f);
    return 0;
  }
  while (fgets(line, sizeof line, f)) {
    long key, id;
    if (sscanf(line, "%ld %ld", &key, &id) != 2) continue;
    (void)key;
    int rc;
    if (strcmp(kind, "shm") == 0) rc = shmctl((int)id, IPC_RMID, NULL);
    else if (strcmp(kind, "msg") == 0) rc = msgctl((int)id, IPC_RMID, NULL);
    else rc = semctl((int)id, 0, IPC_RMID);
    if (rc < 0) left++;
  }
  fclose(f);
  return left;
}

/*
 * The extended attributes a program can set on a directory it owns: user.* and the POSIX ACLs
 * (system.posix_acl_access, system.posix_acl_default: a default ACL would give every later file
 * its permissions whatever the creator's umask). security.* and trusted.* need capabilities the
 * sandbox user never holds.
 */
static int settable_xattr(const char *name) { return strncmp(name, "user.", 5) == 0 || strncmp(name, "system.posix_acl_", 17) == 0; }

/* The names of a directory's extended attributes (NUL-separated, *len bytes; free it), or NULL. */
static char *list_xattrs(int dir, ssize_t *len) {
  for (int attempt = 0; attempt < 4; attempt++) {
    ssize_t size = flistxattr(dir, NULL, 0);
    if (size < 0) return NULL;
    char *names = malloc((size_t)size + 1);
    if (!names) die("out of memory");
    *len = flistxattr(dir, names, (size_t)size);
    if (*len >= 0) return names;
    free(names);
    if (errno != ERANGE) return NULL; /* ERANGE: the list grew meanwhile; ask again */
  }
  return NULL;
}

/* Removes (remove = 1) or names as left behind (remove = 0) every settable extended attribute of a root. */
static void wipe_xattrs(int dir, const char *root, int remove) {
  ssize_t len = 0;
  char *names = list_xattrs(dir, &len);
  if (!names) {
    if (errno != ENOTSUP) wipe_note("cannot list the extended attributes of", root, errno);
    return;
  }
  for (char *name = names; name < names + len; name += strlen(name) + 1) {
    if (!settable_xattr(name)) continue;
    if (!remove) wipe_note("left behind: an extended attribute on", root, 0);
    else if (fremovexattr(dir, name) < 0 && errno != ENODATA) wipe_note("cannot remove an extended attribute of", root, errno);
  }
  free(names);
}

static int wipe_main(void) {
  if (geteuid() == 0) {
    fprintf(stderr, "isol8-wipe: runs as the sandbox user, not as root\n");
    return 2;
  }
  kill(-1, SIGKILL);
  static const char *roots[] = {"/sandbox", "/tmp", "/dev/shm", "/dev/mqueue"};
  for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
    int dir = open(roots[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir < 0) {
      if (errno != ENOENT) wipe_note("cannot open", roots[i], errno);
      continue;
    }
    if (i == 0) fchmod(dir, 0700); /* /sandbox is the user's; the others are root's, sticky */
    int tree = fcntl(dir, F_DUPFD_CLOEXEC, 0);
    if (tree < 0) wipe_note("cannot open", roots[i], errno);
    else wipe_tree(tree, roots[i]);
    /* The root itself stays: what the program set on it goes (the ACLs before the mode, as
       removing an access ACL leaves the mode its mask made). */
    wipe_xattrs(dir, roots[i], 1);
    if (i == 0 && fchmod(dir, 0700) < 0) wipe_note("cannot chmod", roots[i], errno);
    close(dir);
  }
  const char *kinds[] = {"shm", "msg", "sem"};
  for (int i = 0; i < 3; i++)
    if (wipe_ipc(kinds[i]) > 0) wipe_note("cannot remove an IPC object:", kinds[i], 0);
  kill(-1, SIGKILL);
  /* Check: every tree empty, no process of this user but this one. */
  for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
    DIR *d = opendir(roots[i]);
    if (!d) continue;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
        wipe_note("left behind:", roots[i], 0);
        break;
      }
    }
    closedir(d);
  }
  /* Check: each root as a fresh container has it (/sandbox: the user's, 0700; the others: root's,
     1777), and no extended attribute or ACL of the program's on it. */
  for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
    int dir = open(roots[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir < 0) continue;
    struct stat st;
    int own = i == 0;
    if (fstat(dir, &st) < 0) wipe_note("cannot stat", roots[i], errno);
    else if ((st.st_mode & 07777) != (own ? 0700u : 01777u) || st.st_uid != (own ? getuid() : 0) || st.st_gid != (own ? getgid() : 0))
      wipe_note("not as a fresh container has it (mode or owner):", roots[i], 0);
    wipe_xattrs(dir, roots[i], 0);
    close(dir);
  }
  if (user_alive(getpid(), getuid())) wipe_note("a process survived:", "kill -9 -1", 0);
  return wipe_failed ? 1 : 0;
}

/* ------------------------------------------------------------------ the sandbox user's name */

/* A uid from the command line: decimal digits only, within the sandbox range; 0 when it is not. */
static uid_t parse_uid(const char *text) {
  if (!text || !*text || strlen(text) > 10) return 0;
  unsigned long long v = 0;
  for (const char *c = text; *c; c++) {
    if (*c < '0' || *c > '9') return 0;
    v = v * 10 + (unsigned)(*c - '0');
  }
  return v >= SANDBOX_UID_MIN && v <= SANDBOX_UID_MAX ? (uid_t)v : 0;
}

/* Writes `base` (a file of the image, may be missing) plus `line` to `path`, replacing it. */
static int write_users_file(const char *base, const char *path, const char *line) {
  char text[65536];
  ssize_t n = read_text(base, text, sizeof text);
  if (n < 0) n = 0;
  if (n > 0 && text[n - 1] != '\n') text[n++] = '\n';
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  size_t len = strlen(line);
  int ok = write(fd, text, (size_t)n) == n && write(fd, line, len) == (ssize_t)len && fchmod(fd, 0644) == 0;
  return close(fd) == 0 && ok ? 0 : -1;
}

/*
 * Gives the sandbox uid a name: /etc/passwd and /etc/group of isol8's runtime images are links
 * into USERS_DIR (a root-owned tmpfs; the root filesystem stays read-only), written here from the
 * image's own files (USERS_BASE) plus "sandbox" with this uid, HOME /sandbox. Without them
 * (os.userInfo(), getpass, a shell prompt) programs would find no user. An image without
 * USERS_DIR (a custom one) keeps its files: nothing to do.
 */
static int write_users(uid_t uid) {
  struct stat st;
  if (stat(USERS_DIR, &st) < 0) return errno == ENOENT ? 0 : -1;
  char line[128];
  snprintf(line, sizeof line, "sandbox:x:%u:%u:isol8 sandbox:/sandbox:/bin/bash\n", (unsigned)uid, (unsigned)uid);
  if (write_users_file(USERS_BASE "/passwd", USERS_DIR "/passwd", line) < 0) return -1;
  snprintf(line, sizeof line, "sandbox:x:%u:\n", (unsigned)uid);
  return write_users_file(USERS_BASE "/group", USERS_DIR "/group", line);
}

/* ------------------------------------------------------------------ the loop */

static void reap(void) {
  for (;;) {
    int status;
    struct rusage ru;
    pid_t pid = wait4(-1, &status, WNOHANG, &ru);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return;
    if (R.phase != IDLE && pid == R.pid && !R.exited) {
      R.exited = 1;
      R.status = status;
      R.ru = ru;
    } else if (R.phase == UNPACKING && pid == R.tar_pid) {
      R.tar_done = 1;
      R.tar_status = status;
    } else if (pid == S.pid) {
      standby_forget(); /* it died while waiting (a KILLALL, or its warm-start program ended) */
    } else {
      ctx_reap(pid, status);
    }
  }
}

/* Moves the run forward after any event. */
static void step(void) {
  if (R.phase == UNPACKING) {
    if (R.tar_in >= 0 && R.files_done && buf_pending(&R.tar_q) == 0) close_fd(&R.tar_in);
    if (R.tar_done) {
      close_fd(&R.tar_in);
      buf_free(&R.tar_q);
      R.tar_pid = 0;
      if (R.kill_reason) {
        R.status = R.tar_status;
        begin_drain();
      } else if (!WIFEXITED(R.tar_status) || WEXITSTATUS(R.tar_status) != 0) {
        run_stderr("isol8: could not unpack the request files\n");
        R.start_failed = 1;
        R.status = 125;
        begin_drain();
      } else {
        start_program();
        if (R.phase == RUNNING && buf_pending(&R.stdin_q) == 0 && R.stdin_done) close_fd(&R.stdin_w);
      }
    }
  }
  if (R.phase == RUNNING) {
    if (R.stdin_w >= 0 && R.stdin_done && buf_pending(&R.stdin_q) == 0) close_fd(&R.stdin_w);
    if (R.exited) begin_drain();
  }
  finish_if_drained();
}

static void write_queue(int *fd, buf_t *q) {
  while (*fd >= 0 && buf_pending(q) > 0) {
    ssize_t n = write(*fd, q->p + q->off, buf_pending(q));
    if (n > 0) {
      buf_consume(q, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    /* EPIPE: the reader is gone; what it did not take is dropped. */
    close_fd(fd);
    buf_free(q);
  }
}

/* Reads what a pipe holds now into output frames (a few chunks, or until empty or EOF). */
static void read_output(int *fd, uint8_t type, int until_empty) {
  unsigned char chunk[READ_CHUNK];
  for (int i = 0; (until_empty || i < 4) && *fd >= 0 && buf_pending(&out_q) < OUT_HIGH_WATER; i++) {
    ssize_t n = read(*fd, chunk, sizeof chunk);
    if (n > 0) {
      frame(type, R.id, chunk, (size_t)n);
      if ((size_t)n < sizeof chunk && !until_empty) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    close_fd(fd);
  }
}

static int has_capability(const struct __user_cap_data_struct *data, int cap) {
  return (data[cap / 32].effective >> (cap % 32)) & 1;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--wipe") == 0) return wipe_main();
  if (argc > 0 && argv[0][0] == '/') self_path = argv[0];
  /* `--users N`: only write the user files (the exec path runs it once per container, as root). */
  if (argc == 3 && strcmp(argv[1], "--users") == 0) {
    uid_t uid = parse_uid(argv[2]);
    if (!uid) {
      fprintf(stderr, "isol8-executor: --users takes a uid from %u to %u, got %s\n", SANDBOX_UID_MIN, SANDBOX_UID_MAX, argv[2]);
      return 2;
    }
    if (write_users(uid) < 0) {
      fprintf(stderr, "isol8-executor: cannot write the sandbox user's name into %s: %s\n", USERS_DIR, strerror(errno));
      return 1;
    }
    return 0;
  }
  /* The environment, not argv: the executor's command line stays its path (what a program sees
     in /proc). Programs get the container's environment: not this. */
  sandbox_uid = parse_uid(getenv("ISOL8_SANDBOX_UID"));
  sandbox_gid = (gid_t)sandbox_uid;
  unsetenv("ISOL8_SANDBOX_UID");
  /* Refuse to run without exactly the means to drop to the sandbox user. */
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct caps[2];
  memset(caps, 0, sizeof caps);
  if (syscall(SYS_capget, &header, caps) < 0) die("capget");
  int missing = geteuid() != 0 || !has_capability(caps, CAP_SETUID) || !has_capability(caps, CAP_SETGID) || !has_capability(caps, CAP_SETPCAP);
  /* Nobody may read this process's memory or descriptors (it is uid 0 apart from them anyway). */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0) die("sigprocmask");
  sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) die("signalfd");
  set_nonblock(0);
  set_nonblock(1);
  init_run();
  executor_bounding = bounding_set();
  devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) die("/dev/null");

  char why[160];
  if (missing) {
    snprintf(why, sizeof why, "the executor needs uid 0 with CAP_SETUID, CAP_SETGID and CAP_SETPCAP (and nothing else) to start programs as the sandbox user");
  } else if (!sandbox_uid) {
    snprintf(why, sizeof why, "the executor takes the sandbox uid in ISOL8_SANDBOX_UID, from %u to %u", SANDBOX_UID_MIN, SANDBOX_UID_MAX);
    missing = 1;
  } else if (write_users(sandbox_uid) < 0) {
    diag("cannot write the sandbox user's name into %s: %s", USERS_DIR, strerror(errno));
  }
  if (missing) {
    diag("%s", why);
    frame_text(F_ERROR, 0, why);
    while (buf_pending(&out_q) > 0) {
      struct pollfd w = {1, POLLOUT, 0};
      poll(&w, 1, 1000);
      flush_out();
    }
    return 1;
  }

  unsigned char hello[16 + 14];
  put32(hello, PROTOCOL_VERSION);
  put32(hello + 4, (uint32_t)getpid());
  put32(hello + 8, SANDBOX_UID);
  put32(hello + 12, SANDBOX_GID);
  memcpy(hello + 16, "isol8-executor", 14);
  frame(F_HELLO, 0, hello, sizeof hello);

  for (;;) {
    flush_out();
    struct pollfd fds[10 + 4 * MAX_CONTEXTS];
    int i_ctx[MAX_CONTEXTS][4];
    int nfds = 0, i_in = -1, i_out = -1, i_sig, i_tar = -1, i_stdin = -1, i_o = -1, i_e = -1, i_ready = -1;
    size_t queued_in = buf_pending(&R.tar_q) + buf_pending(&R.stdin_q);
    if (queued_in < IN_HIGH_WATER) {
      i_in = nfds;
      fds[nfds++] = (struct pollfd){0, POLLIN, 0};
    }
    if (buf_pending(&out_q) > 0) {
      i_out = nfds;
      fds[nfds++] = (struct pollfd){1, POLLOUT, 0};
    }
    i_sig = nfds;
    fds[nfds++] = (struct pollfd){sfd, POLLIN, 0};
    if (S.ready_r >= 0) {
      i_ready = nfds;
      fds[nfds++] = (struct pollfd){S.ready_r, POLLIN, 0};
    }
    if (R.tar_in >= 0 && buf_pending(&R.tar_q) > 0) {
      i_tar = nfds;
      fds[nfds++] = (struct pollfd){R.tar_in, POLLOUT, 0};
    }
    if (R.stdin_w >= 0 && buf_pending(&R.stdin_q) > 0) {
      i_stdin = nfds;
      fds[nfds++] = (struct pollfd){R.stdin_w, POLLOUT, 0};
    }
    int reading = buf_pending(&out_q) < OUT_HIGH_WATER;
    if (R.out_r >= 0 && reading) {
      i_o = nfds;
      fds[nfds++] = (struct pollfd){R.out_r, POLLIN, 0};
    }
    if (R.err_r >= 0 && reading) {
      i_e = nfds;
      fds[nfds++] = (struct pollfd){R.err_r, POLLIN, 0};
    }
    /* Each context: its output and messages (while the engine takes output), its input queue. */
    for (int c = 0; c < MAX_CONTEXTS; c++) {
      struct context *x = &C[c];
      int want[4] = {x->used && reading ? x->out_r : -1, x->used && reading ? x->err_r : -1, x->used && reading ? x->msg_r : -1,
                     x->used && buf_pending(&x->in_q) > 0 ? x->in_w : -1};
      for (int k = 0; k < 4; k++) {
        i_ctx[c][k] = -1;
        if (want[k] < 0) continue;
        i_ctx[c][k] = nfds;
        fds[nfds++] = (struct pollfd){want[k], (short)(k == 3 ? POLLOUT : POLLIN), 0};
      }
    }

    int timeout = -1;
    struct timespec t;
    now(&t);
    if ((R.phase == UNPACKING || R.phase == RUNNING) && R.time_limit_ms && !R.kill_reason) {
      int64_t left = (int64_t)R.time_limit_ms - ms_between(&R.received, &t);
      timeout = left < 0 ? 0 : (int)left;
    }
    for (int c = 0; c < MAX_CONTEXTS; c++) {
      if (!C[c].used || !C[c].reaped) continue;
      int64_t left = ms_between(&t, &C[c].drain_until);
      if (left < 0) left = 0;
      if (timeout < 0 || left < timeout) timeout = (int)left;
    }
    if (R.phase == DRAINING) {
      if (!reading) {
        /* The engine is slow to take output: that is not the program holding the pipes. */
        R.drain_until = t;
        add_ms(&R.drain_until, DRAIN_MS);
      }
      int64_t left = ms_between(&t, &R.drain_until);
      if (left < 0) left = 0;
      if (timeout < 0 || left < timeout) timeout = (int)left;
    }

    int ready = poll(fds, (nfds_t)nfds, timeout);
    if (ready < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (fds[i_sig].revents) {
      struct signalfd_siginfo info;
      while (read(sfd, &info, sizeof info) == sizeof info) {
      }
      reap();
    }
    if (i_ready >= 0 && fds[i_ready].revents) {
      char ignored[64];
      ssize_t n;
      while ((n = read(S.ready_r, ignored, sizeof ignored)) > 0) {
      }
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        reap();
        prepare_answer();
      }
    }
    if (i_out >= 0 && fds[i_out].revents) flush_out();
    if (i_tar >= 0 && fds[i_tar].revents) write_queue(&R.tar_in, &R.tar_q);
    if (i_stdin >= 0 && fds[i_stdin].revents) write_queue(&R.stdin_w, &R.stdin_q);
    if (i_o >= 0 && fds[i_o].revents) read_output(&R.out_r, F_STDOUT, 0);
    if (i_e >= 0 && fds[i_e].revents) read_output(&R.err_r, F_STDERR, 0);
    for (int c = 0; c < MAX_CONTEXTS; c++) {
      struct context *x = &C[c];
      if (i_ctx[c][0] >= 0 && fds[i_ctx[c][0]].revents) ctx_read(&x->out_r, F_CTX_STDOUT, x->id, 0);
      if (i_ctx[c][1] >= 0 && fds[i_ctx[c][1]].revents) ctx_read(&x->err_r, F_CTX_STDERR, x->id, 0);
      if (i_ctx[c][2] >= 0 && fds[i_ctx[c][2]].revents) ctx_read_messages(x);
      if (i_ctx[c][3] >= 0 && fds[i_ctx[c][3]].revents) write_queue(&x->in_w, &x->in_q);
    }
    if (i_in >= 0 && fds[i_in].revents) read_requests();
    for (int c = 0; c < MAX_CONTEXTS; c++)
      if (C[c].used && C[c].in_w >= 0 && buf_pending(&C[c].in_q) > 0) write_queue(&C[c].in_w, &C[c].in_q);
    if (R.tar_in >= 0 && buf_pending(&R.tar_q) > 0) write_queue(&R.tar_in, &R.tar_q);
    if (R.stdin_w >= 0 && buf_pending(&R.stdin_q) > 0) write_queue(&R.stdin_w, &R.stdin_q);

    now(&t);
    if ((R.phase == UNPACKING || R.phase == RUNNING) && R.time_limit_ms && !R.kill_reason &&
        ms_between(&R.received, &t) >= (int64_t)R.time_limit_ms) {
      kill_run(EX_TIMED_OUT);
    }
    if (R.phase == RUNNING || R.phase == UNPACKING) reap();
    step();
    for (int c = 0; c < MAX_CONTEXTS; c++) ctx_finish_if_drained(&C[c], &t);
    if (R.phase == DRAINING && ms_between(&t, &R.drain_until) <= 0 && (R.out_r >= 0 || R.err_r >= 0)) {
      /* Something outside the sandbox user's reach still holds a pipe: stop waiting for it. */
      R.output_cut = 1;
      close_fd(&R.out_r);
      close_fd(&R.err_r);
      finish_if_drained();
    }
  }
}
