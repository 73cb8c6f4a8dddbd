import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { baseSandboxSpec, executorMainProcess, runtimeImageTag } from "@isol8/core";
import { engineOptionsSchema } from "@isol8/kit";
import { kubernetesDriverOptionsSchema, podFromSpec, SANDBOX_CONTAINER } from "@isol8/plugin-driver-kubernetes";
import { DockerIsol8 } from "isol8";
import { startFakeRegistry, type FakeRegistry } from "../fake-registry/server.js";
import { closedLoopbackPort, docker, isol8Cli } from "../helpers.js";

/**
 * `isol8 setup --push <registry>` with the built CLI and the real dockerd, pushing over plain HTTP
 * to a fake Registry V2 server on 127.0.0.1 (dockerd allows 127.0.0.0/8 registries without TLS).
 */

interface PushFile {
  registry: string;
  images: Record<string, { name: string; reference: string; labels: Record<string, string> }>;
}

const PUSH_TIMEOUT = 600_000;
let registry: FakeRegistry;
let authRegistry: FakeRegistry;
let cwd: string;
/** Every registry host this file pushed to (or tried to): their tags are removed from dockerd afterwards. */
const hosts = new Set<string>();
/** The default runtimes' images, as the engine names them. */
const expected = new Map<string, string>();
/** An empty Docker config, so the user's ~/.docker never answers for these registries. */
const env = () => ({ DOCKER_CONFIG: join(cwd, "docker-config") });

beforeAll(async () => {
  [registry, authRegistry] = await Promise.all([startFakeRegistry(), startFakeRegistry({ auth: { username: "isol8", password: "s3cret" } })]);
  hosts.add(registry.host).add(authRegistry.host);
  cwd = mkdtempSync(join(tmpdir(), "isol8-setup-push-"));
  mkdirSync(join(cwd, "docker-config"));
  const engine = new DockerIsol8();
  for (const name of engine.kit.runtimes.names()) expected.set(name, runtimeImageTag(engine.kit.runtimes.get(name)));
});

afterAll(async () => {
  await Promise.all([registry?.close(), authRegistry?.close()]);
  if (cwd) rmSync(cwd, { recursive: true, force: true });
  // Only the tags this file made: the images keep their isol8/... names.
  const tags = (await docker("images", "--format", "{{.Repository}}:{{.Tag}}")).split("\n").filter((t) => [...hosts].some((h) => t.startsWith(`${h}/`)));
  // One call: every tag is tried even if one fails, and a loaded machine does not pay a CLI start per tag.
  if (tags.length) await docker("rmi", ...tags);
}, 60_000);

const readPushFile = (name: string): PushFile => JSON.parse(readFileSync(join(cwd, name), "utf8")) as PushFile;

describe("isol8 setup --push", () => {
  it(
    "pushes every default runtime image: the registry holds each manifest, and the printed and written references carry the digests it computed",
    async () => {
      const result = await isol8Cli(["setup", "--push", `${registry.host}/isol8`], { cwd, env: env() });
      expect(result.stderr).not.toMatch(/isol8: /);
      expect(result.code).toBe(0);
      const file = readPushFile("isol8-images.json");
      expect(file.registry).toBe(`${registry.host}/isol8`);
      expect(expected.size).toBeGreaterThanOrEqual(5);
      expect(Object.keys(file.images).sort()).toEqual([...expected.values()].sort());
      for (const [runtime, image] of expected) {
        const tag = image.slice(image.indexOf(":") + 1);
        const stored = registry.manifests.get(`isol8/${runtime}:${tag}`);
        expect(stored, `manifest of ${runtime}`).toBeDefined();
        expect(registry.manifests.get(`isol8/${runtime}@${stored!.digest}`)).toBe(stored);
        const reference = `${registry.host}/isol8/${runtime}@${stored!.digest}`;
        expect(file.images[image]).toMatchObject({ name: runtime, reference, labels: { "isol8.runtime": runtime } });
        expect(result.stdout).toContain(`pushed     ${reference}`);
      }
      expect(registry.stats.blobUploads).toBeGreaterThan(0);
      expect(result.stderr).toMatch(/\[python\] Pushed 127\.0\.0\.1:\d+\/isol8\/python@sha256:[0-9a-f]{64}/);
    },
    PUSH_TIMEOUT,
  );

  it(
    "a second run uploads no layer and gives the same digests",
    async () => {
      const first = readPushFile("isol8-images.json");
      const uploads = registry.stats.blobUploads;
      expect(uploads).toBeGreaterThan(0);
      const result = await isol8Cli(["setup", "--push", `${registry.host}/isol8`, "--push-manifest", "second.json"], { cwd, env: env() });
      expect(result.code).toBe(0);
      expect(registry.stats.blobUploads).toBe(uploads);
      expect(result.stderr).toMatch(/Layer already exists/);
      expect(readPushFile("second.json").images).toEqual(first.images);
    },
    PUSH_TIMEOUT,
  );

  it("the written file drives the Kubernetes driver: its Pod names the python image by the pushed digest", () => {
    const file = readPushFile("isol8-images.json");
    const image = expected.get("python")!;
    expect(file.images[image]?.reference).toMatch(/@sha256:[0-9a-f]{64}$/);
    const options = kubernetesDriverOptionsSchema.parse({
      images: join(cwd, "isol8-images.json"),
      acceptWeaker: { tmpfsExec: true, nodeLogs: true },
      nodePodPidsLimit: 64,
    });
    const pod = podFromSpec(
      { ...baseSandboxSpec(engineOptionsSchema.parse({}), image, 1_234_567_890, executorMainProcess(1_234_567_890)), labels: {} },
      options,
    );
    expect(pod.spec!.containers.find((c) => c.name === SANDBOX_CONTAINER)!.image).toBe(file.images[image]!.reference);
  });

  it(
    "with the Docker config's auths entry it pushes; with a wrong password it fails before any push, naming the registry, with a non-zero exit",
    async () => {
      const image = expected.get("bash")!;
      const wrong = await isol8Cli(
        ["setup", "-r", "bash", "--push", `${authRegistry.host}/isol8`, "--registry-auth", "isol8:wrong", "--push-manifest", "wrong.json"],
        {
          cwd,
          env: env(),
        },
      );
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr).not.toContain("Pushing isol8/bash");
      expect(wrong.stderr).toContain(
        `logging in to the registry ${authRegistry.host} failed: login attempt to http://${authRegistry.host}/v2/ failed with status: 401 Unauthorized (credentials from --registry-auth)`,
      );
      expect(wrong.stderr).toContain("ISOL8_ERR_IMAGE_BUILD");
      expect(authRegistry.stats.unauthorized).toBeGreaterThan(0);
      expect(authRegistry.manifests.size).toBe(0);
      expect(() => readFileSync(join(cwd, "wrong.json"))).toThrow(/ENOENT/);

      const configDir = join(cwd, "docker-config-auth");
      mkdirSync(configDir);
      writeFileSync(
        join(configDir, "config.json"),
        JSON.stringify({ auths: { [authRegistry.host]: { auth: Buffer.from("isol8:s3cret").toString("base64") } } }),
      );
      const right = await isol8Cli(["setup", "-r", "bash", "--push", `${authRegistry.host}/isol8`, "--push-manifest", "auth.json"], {
        cwd,
        env: { DOCKER_CONFIG: configDir },
      });
      expect(right.stderr).not.toMatch(/isol8: /);
      expect(right.code).toBe(0);
      const stored = authRegistry.manifests.get(`isol8/bash:${image.slice(image.indexOf(":") + 1)}`);
      expect(stored).toBeDefined();
      expect(readPushFile("auth.json").images[image]?.reference).toBe(`${authRegistry.host}/isol8/bash@${stored!.digest}`);
    },
    PUSH_TIMEOUT,
  );

  it(
    "an unreachable registry fails with the daemon's connection error naming it, and a non-zero exit (the same push to a listening registry succeeds)",
    async () => {
      const port = await closedLoopbackPort();
      hosts.add(`127.0.0.1:${port}`);
      const result = await isol8Cli(["setup", "-r", "bash", "--push", `127.0.0.1:${port}/isol8`, "--push-manifest", "unreachable.json"], { cwd, env: env() });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(
        new RegExp(`pushing isol8/bash:\\S+ to 127\\.0\\.0\\.1:${port}/isol8/bash:\\S+ failed: .*127\\.0\\.0\\.1:${port}.*connection refused`),
      );
      expect(() => readFileSync(join(cwd, "unreachable.json"))).toThrow(/ENOENT/);

      const control = await isol8Cli(["setup", "-r", "bash", "--push", `${registry.host}/isol8`, "--push-manifest", "control.json"], { cwd, env: env() });
      expect(control.code).toBe(0);
      expect(readPushFile("control.json").images[expected.get("bash")!]?.reference).toMatch(/@sha256:[0-9a-f]{64}$/);
    },
    PUSH_TIMEOUT,
  );

  it(
    "a layer upload the registry rejects inside the push stream fails the push, naming the image and the registry's message (no file written)",
    async () => {
      const failing = await startFakeRegistry({ rejectUploads: { status: 400, code: "BLOB_UPLOAD_INVALID", message: "quota exceeded for isol8" } });
      hosts.add(failing.host);
      try {
        const result = await isol8Cli(["setup", "-r", "bash", "--push", `${failing.host}/isol8`, "--push-manifest", "rejected.json"], { cwd, env: env() });
        expect(result.code).not.toBe(0);
        expect(result.stderr).toMatch(
          new RegExp(`pushing isol8/bash:\\S+ to ${failing.host.replace(/\./g, "\\.")}/isol8/bash:\\S+ failed: .*quota exceeded for isol8`),
        );
        expect(result.stderr).toContain("ISOL8_ERR_IMAGE_BUILD");
        expect(failing.manifests.size).toBe(0);
        expect(() => readFileSync(join(cwd, "rejected.json"))).toThrow(/ENOENT/);
      } finally {
        await failing.close();
      }
    },
    PUSH_TIMEOUT,
  );

  it("refuses a registry without a host before building anything, naming the flag", async () => {
    const result = await isol8Cli(["setup", "-r", "bash", "--push", "isol8"], { cwd, env: env() });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/--push: "isol8" does not start with a registry host/);
    expect(result.stderr).not.toMatch(/up to date|Building/);
  });
});
