import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { KubernetesApiError } from "./errors.js";
import { execArgv, exitCodeOfStatus, podInfo, startFailure } from "./pod-status.js";

const executor = { uid: 0, gid: 0, canSwitch: true };
const idle = { uid: 65534, gid: 65534, canSwitch: false };

describe("execArgv", () => {
  it("runs the argv as is for the container's own user, with env and working directory through env -C", () => {
    expect(execArgv({ argv: ["id"] }, idle)).toEqual(["id"]);
    expect(execArgv({ argv: ["id"], user: "65534:65534" }, idle)).toEqual(["id"]);
    expect(execArgv({ argv: ["id"], env: { A: "1" }, workdir: "/tmp" }, idle)).toEqual(["env", "-C", "/tmp", "A=1", "id"]);
  });

  it("drops to another user with setpriv (no capability, no group) where the container may switch", () => {
    expect(execArgv({ argv: ["id"], user: "1000000001:1000000001" }, executor)).toEqual([
      "setpriv",
      "--reuid=1000000001",
      "--regid=1000000001",
      "--clear-groups",
      "--inh-caps=-all",
      "--bounding-set=-all",
      "--",
      "id",
    ]);
  });

  it("refuses a user the container cannot become, and a user name", () => {
    expect(() => execArgv({ argv: ["id"], user: "0:0" }, idle, "pod p")).toThrow(/exec as user 0:0 in pod p: .*\(65534:65534\), which cannot switch users/);
    expect(() => execArgv({ argv: ["id"], user: "sandbox" }, executor)).toThrow(/numeric "uid:gid" only/);
  });
});

describe("exitCodeOfStatus", () => {
  it("reads Success as 0 and NonZeroExitCode's ExitCode cause", () => {
    expect(exitCodeOfStatus({ status: "Success" })).toBe(0);
    expect(exitCodeOfStatus({ status: "Failure", reason: "NonZeroExitCode", details: { causes: [{ reason: "ExitCode", message: "42" }] } })).toBe(42);
  });

  it("gives 127 for a command not found and 126 for another start failure, as Docker does", () => {
    expect(exitCodeOfStatus({ status: "Failure", reason: "InternalError", message: 'exec: "nope": executable file not found in $PATH' })).toBe(127);
    expect(exitCodeOfStatus({ status: "Failure", reason: "InternalError", message: "permission denied" })).toBe(126);
  });
});

const pod = (status: V1Pod["status"], extra: Partial<V1Pod["metadata"]> = {}): V1Pod => ({
  metadata: { name: "isol8-abc", labels: { "isol8.managed": "true" }, ...extra },
  spec: { containers: [{ name: "sandbox" }] },
  status,
});

describe("startFailure", () => {
  it("names an eviction, an image that cannot be pulled and a failed init container", () => {
    expect(startFailure(pod({ phase: "Failed", reason: "Evicted", message: "The node was low on resource: memory." }))).toMatchObject({ reason: "Evicted" });
    const pull = startFailure(
      pod({
        phase: "Pending",
        containerStatuses: [
          {
            name: "sandbox",
            image: "x",
            imageID: "",
            ready: false,
            restartCount: 0,
            state: { waiting: { reason: "ImagePullBackOff", message: "Back-off pulling image" } },
          },
        ],
      }),
    );
    expect(pull).toBeInstanceOf(KubernetesApiError);
    expect(pull).toMatchObject({ reason: "ImagePullBackOff" });
    const init = startFailure(
      pod({
        phase: "Pending",
        initContainerStatuses: [
          { name: "isol8-volumes", image: "x", imageID: "", ready: false, restartCount: 0, state: { terminated: { exitCode: 1, reason: "Error" } } },
        ],
      }),
    );
    expect(init?.message).toMatch(/container isol8-volumes exited 1/);
  });

  it("positive control: a pod still being created is not a failure", () => {
    expect(
      startFailure(
        pod({
          phase: "Pending",
          containerStatuses: [{ name: "sandbox", image: "x", imageID: "", ready: false, restartCount: 0, state: { waiting: { reason: "ContainerCreating" } } }],
        }),
      ),
    ).toBeUndefined();
  });
});

describe("podInfo", () => {
  it("is running only while its container runs and the pod is not being deleted; tells the exit code once ended", () => {
    const running = pod({
      phase: "Running",
      podIP: "10.1.2.3",
      containerStatuses: [{ name: "sandbox", image: "x", imageID: "", ready: true, restartCount: 0, state: { running: {} } }],
    });
    expect(podInfo(running)).toEqual({ id: "isol8-abc", running: true, labels: { "isol8.managed": "true" }, addresses: { pod: "10.1.2.3" }, restarts: 0 });
    expect(podInfo({ ...running, metadata: { ...running.metadata, deletionTimestamp: new Date() } }).running).toBe(false);
    const ended = pod({
      phase: "Failed",
      containerStatuses: [{ name: "sandbox", image: "x", imageID: "", ready: false, restartCount: 0, state: { terminated: { exitCode: 137 } } }],
    });
    expect(podInfo(ended)).toMatchObject({ running: false, exitCode: 137 });
  });
});
