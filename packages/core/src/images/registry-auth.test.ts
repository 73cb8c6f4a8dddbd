import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { InvalidOptionsError } from "@isol8/kit";
import { dockerConfigPath, parseRegistry, resolveRegistryAuth } from "./registry-auth.js";

const dir = mkdtempSync(join(tmpdir(), "isol8-registry-auth-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A Docker config directory holding this config.json, as $DOCKER_CONFIG. */
function dockerConfig(name: string, config: unknown): NodeJS.ProcessEnv {
  const configDir = join(dir, name);
  rmSync(configDir, { recursive: true, force: true });
  mkdirSync(configDir);
  writeFileSync(join(configDir, "config.json"), JSON.stringify(config));
  return { DOCKER_CONFIG: configDir };
}

const HOST = "registry.example:5000";
const basic = (credentials: string) => Buffer.from(credentials).toString("base64");

describe("parseRegistry", () => {
  it("splits host and repository path", () => {
    expect(parseRegistry("registry.example:5000/isol8")).toEqual({ host: HOST, path: "isol8" });
    expect(parseRegistry("127.0.0.1:5000/team/isol8/")).toEqual({ host: "127.0.0.1:5000", path: "team/isol8" });
    expect(parseRegistry("localhost")).toEqual({ host: "localhost", path: "" });
  });

  it("refuses a Docker Hub short name and an invalid path component, naming --push", () => {
    expect(() => parseRegistry("isol8/images")).toThrow(InvalidOptionsError);
    expect(() => parseRegistry("isol8/images")).toThrow(/--push: "isol8\/images" does not start with a registry host/);
    expect(() => parseRegistry("registry.example/Isol8")).toThrow(/--push: "Isol8" in "registry.example\/Isol8" is not a repository path component/);
  });
});

describe("resolveRegistryAuth", () => {
  it("uses --registry-auth first, splitting at the first colon", async () => {
    const env = dockerConfig("explicit", { auths: { [HOST]: { auth: basic("other:secret") } } });
    await expect(resolveRegistryAuth(HOST, "isol8:pa:ss", env)).resolves.toEqual({ username: "isol8", password: "pa:ss", serveraddress: HOST });
    await expect(resolveRegistryAuth(HOST, "nocolon", env)).rejects.toThrow(/--registry-auth: expected <user>:<password>/);
  });

  it("reads the auths entry of the registry's host (base64 user:password), whatever scheme or path its key carries", async () => {
    const env = dockerConfig("auths", { auths: { [`https://${HOST}/v2/`]: { auth: basic("isol8:s3cret") }, "elsewhere.example": { auth: basic("no:no") } } });
    await expect(resolveRegistryAuth(HOST, undefined, env)).resolves.toEqual({ username: "isol8", password: "s3cret", serveraddress: HOST });
    await expect(resolveRegistryAuth("third.example", undefined, env)).resolves.toEqual({ serveraddress: "third.example" });
  });

  it("passes an identity token on", async () => {
    const env = dockerConfig("token", { auths: { [HOST]: { identitytoken: "tok" } } });
    await expect(resolveRegistryAuth(HOST, undefined, env)).resolves.toEqual({ identitytoken: "tok", serveraddress: HOST });
  });

  it("pushes anonymously without a config file, and refuses an unreadable one naming it", async () => {
    const missing = { DOCKER_CONFIG: join(dir, "absent") };
    expect(dockerConfigPath(missing)).toBe(join(dir, "absent", "config.json"));
    await expect(resolveRegistryAuth(HOST, undefined, missing)).resolves.toEqual({ serveraddress: HOST });
    const broken = dockerConfig("broken", {});
    writeFileSync(join(broken.DOCKER_CONFIG!, "config.json"), "{ not json");
    await expect(resolveRegistryAuth(HOST, undefined, broken)).rejects.toThrow(/config\.json: not a readable Docker config/);
  });

  it("names a credential helper that cannot run", async () => {
    const env = dockerConfig("helper", { credHelpers: { [HOST]: "isol8-absent-helper" } });
    await expect(resolveRegistryAuth(HOST, undefined, env)).rejects.toThrow(
      /credential helper "isol8-absent-helper", but docker-credential-isol8-absent-helper cannot run/,
    );
  });
});
