import { afterEach, expect, test } from "vitest";
import { DockerIsol8 } from "isol8";
import { isol8Containers } from "../helpers.js";

// The pool's wipe must leave every root it resets as a fresh container has it: contents, mode,
// owner, extended attributes and POSIX ACLs. Extended attributes and ACLs live on the tmpfs root
// itself, which the wipe empties but does not replace, so execution A plants them and execution
// B (the next tenant, in the same container) looks for them. Runs on the launcher ISOL8_LAUNCHER
// selects (the executor's --wipe by default, the exec path's wipe with ISOL8_LAUNCHER=exec).

const engines: DockerIsol8[] = [];

afterEach(async () => {
  for (const engine of engines.splice(0)) {
    await engine.stop();
    expect(await isol8Containers(engine.id)).toEqual([]);
  }
});

/** Python helpers both executions share: ACLs as the kernel's xattr format (no setfacl in the images). */
const COMMON = `
import json, os, stat, struct
ROOTS = ["/sandbox", "/tmp", "/dev/shm"]
def acl(entries):
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perm, ident) for tag, perm, ident in entries)
ANY = 0xFFFFFFFF
def state(path):
    st = os.stat(path)
    return {"mode": oct(stat.S_IMODE(st.st_mode)), "uid": st.st_uid, "gid": st.st_gid}
def xattrs(path):
    # Names and sizes (the values are large).
    return {name: len(os.getxattr(path, name)) for name in sorted(os.listxattr(path))}
def new_file_mode():
    os.umask(0o077)
    fd = os.open("/sandbox/probe", os.O_CREAT | os.O_WRONLY, 0o666)
    os.close(fd)
    mode = oct(stat.S_IMODE(os.stat("/sandbox/probe").st_mode))
    os.unlink("/sandbox/probe")
    return mode
`;

const PLANT = `${COMMON}
fresh = {root: state(root) for root in ROOTS}
fresh_xattrs = {root: xattrs(root) for root in ROOTS}
os.setxattr("/sandbox", "user.tenant-a", b"secret of tenant A" * 3000)
# Default ACL: every file made in /sandbox later gets rwx for all, whatever the creator's umask.
os.setxattr("/sandbox", "system.posix_acl_default", acl([(1, 7, ANY), (4, 7, ANY), (0x20, 7, ANY)]))
# Access ACL with a named user (uid 4242) on the root itself.
os.setxattr("/sandbox", "system.posix_acl_access", acl([(1, 7, ANY), (2, 7, 4242), (4, 7, ANY), (0x10, 7, ANY), (0x20, 5, ANY)]))
os.chmod("/sandbox", 0o777)
planted = sorted(os.listxattr("/sandbox"))
print(json.dumps({"fresh": fresh, "freshXattrs": fresh_xattrs, "planted": planted,
                  "userXattrBytes": len(os.getxattr("/sandbox", "user.tenant-a")), "newFileMode": new_file_mode()}))
`;

const INSPECT = `${COMMON}
print(json.dumps({"state": {root: state(root) for root in ROOTS}, "xattrs": {root: xattrs(root) for root in ROOTS},
                  "newFileMode": new_file_mode()}))
`;

test("the wipe removes user xattrs and default/access ACLs from /sandbox and restores its mode: the next execution in the container sees a fresh root and its umask holds", async () => {
  // clean: 0 keeps no fresh container aside: B must get A's container, wiped.
  const engine = new DockerIsol8({ poolStrategy: "fast", poolSize: { clean: 0, dirty: 1 }, timeoutMs: 30_000 });
  engines.push(engine);
  await engine.start();

  const a = await engine.execute({ runtime: "python", code: PLANT });
  expect(a.exitCode, a.stderr).toBe(0);
  const planted = JSON.parse(a.stdout);
  // Positive control: A did plant everything, and the default ACL beat its umask of 077.
  expect(planted.planted).toEqual(["system.posix_acl_access", "system.posix_acl_default", "user.tenant-a"]);
  expect(planted.userXattrBytes).toBe(18 * 3000);
  expect(planted.newFileMode).toBe("0o666");
  // A fresh container's roots carry no xattr at all: that is what B must find.
  expect(planted.freshXattrs).toEqual({ "/sandbox": {}, "/tmp": {}, "/dev/shm": {} });

  const b = await engine.execute({ runtime: "python", code: INSPECT });
  expect(b.exitCode, b.stderr).toBe(0);
  expect(b.containerId).toBe(a.containerId);
  const seen = JSON.parse(b.stdout);
  expect(seen.xattrs).toEqual({ "/sandbox": {}, "/tmp": {}, "/dev/shm": {} });
  expect(seen.state).toEqual(planted.fresh);
  expect(seen.newFileMode).toBe("0o600");
});
