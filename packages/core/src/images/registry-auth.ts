import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { InvalidOptionsError } from "@isol8/kit";

/** What the Docker Engine API takes in X-Registry-Auth (dockerode encodes it, base64url of this JSON). */
export interface RegistryAuthConfig {
  username?: string;
  password?: string;
  identitytoken?: string;
  serveraddress: string;
}

/** Where a registry reference (`host[:port]/path`) splits: the host Docker logs in to, and the repository path under it. */
export interface RegistryTarget {
  /** `registry.example:5000` */
  host: string;
  /** `isol8` (may be empty: the images then sit at the registry's root) */
  path: string;
}

const HOST = /^(localhost|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?|\[[0-9A-Fa-f:]+\])(:[0-9]{1,5})?$/;
const PATH_COMPONENT = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$/;

/**
 * Parses `--push <registry>`: a host that is unmistakably one (it has a dot or a port, or is
 * `localhost`), then an optional repository path. Docker Hub's short names (`user/repo`) are refused
 * on purpose: a cluster should pull from a registry named in full.
 */
export function parseRegistry(value: string): RegistryTarget {
  const trimmed = value.trim().replace(/\/+$/, "");
  const [host = "", ...rest] = trimmed.split("/");
  const expected = "expected <host>[:port][/path], e.g. registry.example:5000/isol8";
  if (!HOST.test(host) || !(host.includes(".") || host.includes(":") || host === "localhost")) {
    throw new InvalidOptionsError(`--push: "${value}" does not start with a registry host (${expected})`);
  }
  for (const component of rest) {
    if (!PATH_COMPONENT.test(component)) {
      throw new InvalidOptionsError(`--push: "${component}" in "${value}" is not a repository path component (lowercase letters, digits, . _ -; ${expected})`);
    }
  }
  return { host, path: rest.join("/") };
}

/** The Docker CLI's config file: $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG || join(homedir(), ".docker"), "config.json");
}

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/**
 * The credentials for `host`, the way `docker push` finds them: an explicit `user:password`
 * (`--registry-auth`) wins; else the Docker config's `credHelpers[host]`, or its `auths[host]`
 * entry (`auth` is base64 of `user:password`, or an `identitytoken`), or its `credsStore`
 * helper. No credentials at all is an anonymous push (the registry may refuse it, naming why).
 */
export async function resolveRegistryAuth(host: string, explicit?: string, env: NodeJS.ProcessEnv = process.env): Promise<RegistryAuthConfig> {
  if (explicit !== undefined) {
    const colon = explicit.indexOf(":");
    if (colon <= 0) throw new InvalidOptionsError(`--registry-auth: expected <user>:<password>, got a value without a user before ":"`);
    return { username: explicit.slice(0, colon), password: explicit.slice(colon + 1), serveraddress: host };
  }
  const path = dockerConfigPath(env);
  let config: DockerConfigFile;
  try {
    config = JSON.parse(await readFile(path, "utf8")) as DockerConfigFile;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { serveraddress: host };
    throw new InvalidOptionsError(`${path}: not a readable Docker config (${(error as Error).message})`, { cause: error });
  }
  const helper = config.credHelpers?.[host];
  if (helper) return credentialHelperAuth(helper, host);
  const entry = Object.entries(config.auths ?? {}).find(([key]) => authKeyHost(key) === host)?.[1];
  if (entry?.identitytoken) return { identitytoken: entry.identitytoken, serveraddress: host };
  if (entry?.auth) {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon <= 0) throw new InvalidOptionsError(`${path}: auths["${host}"].auth is not base64 of <user>:<password>`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), serveraddress: host };
  }
  if (entry?.username !== undefined) return { username: entry.username, password: entry.password ?? "", serveraddress: host };
  if (config.credsStore) return credentialHelperAuth(config.credsStore, host);
  return { serveraddress: host };
}

/** `auths` keys may carry a scheme or a path (`https://registry.example/v1/`): compare hosts only. */
function authKeyHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, "").split("/")[0]!;
}

/** Docker's credential-helper protocol: `docker-credential-<name> get`, the server on stdin, `{Username, Secret}` on stdout. */
async function credentialHelperAuth(helper: string, host: string): Promise<RegistryAuthConfig> {
  const program = `docker-credential-${helper}`;
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(program, ["get"], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.on("error", (error) =>
      reject(new InvalidOptionsError(`the Docker config names credential helper "${helper}", but ${program} cannot run: ${error.message}`, { cause: error })),
    );
    child.on("close", (code) => {
      // A helper with no entry for this server exits non-zero ("credentials not found"): push anonymously, as docker does.
      if (code === 0) resolve(stdout);
      else resolve("");
    });
    child.stdin.end(host);
  });
  if (!output.trim()) return { serveraddress: host };
  const { Username, Secret } = JSON.parse(output) as { Username?: string; Secret?: string };
  // Docker's convention: the user "<token>" means Secret is an identity token.
  if (Username === "<token>") return { identitytoken: Secret ?? "", serveraddress: host };
  return { username: Username ?? "", password: Secret ?? "", serveraddress: host };
}
