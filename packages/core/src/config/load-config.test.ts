import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "@isol8/kit";
import { loadConfig } from "./load-config.js";

let root: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "isol8-load-config-"));
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

let projects = 0;

/**
 * Creates a project directory with the given files (path → content). Every project gets a
 * package.json unless one is given, because the search stops at the nearest package.json.
 */
function project(files: Record<string, string> = {}): string {
  const dir = join(root, `project-${++projects}`);
  const all = { "package.json": JSON.stringify({ name: `p${projects}`, private: true }), ...files };
  for (const [path, content] of Object.entries(all)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

async function loadError(options: { cwd?: string; path?: string }): Promise<ConfigError> {
  try {
    await loadConfig(options);
  } catch (error) {
    return error as ConfigError;
  }
  throw new Error("expected loadConfig to throw");
}

describe("loadConfig", () => {
  it("loads an isol8.config.ts that exports a plain object", async () => {
    const dir = project({ "isol8.config.ts": "export default { defaults: { timeoutMs: 5000 } };\n" });
    const config = await loadConfig({ cwd: dir });
    expect(config.defaults).toEqual({ timeoutMs: 5000 });
    expect(config.plugins).toEqual([]);
    expect(config.filepath).toBe(join(dir, "isol8.config.ts"));
  });

  it("loads an isol8.config.ts with TypeScript syntax", async () => {
    const dir = project({
      "isol8.config.ts":
        "interface Defaults { timeoutMs: number }\nconst defaults: Defaults = { timeoutMs: 1234 };\nexport default { defaults } satisfies object;\n",
    });
    expect((await loadConfig({ cwd: dir })).defaults).toEqual({ timeoutMs: 1234 });
  });

  // jiti transpiles the core's whole source graph for this config (seconds on a loaded machine, cold cache).
  it("loads an isol8.config.ts that uses defineConfig and definePlugin from the core", { timeout: 60_000 }, async () => {
    const core = join(dirname(fileURLToPath(import.meta.url)), "..", "index.ts");
    const dir = project({
      "isol8.config.ts": [
        `import { defineConfig, definePlugin } from ${JSON.stringify(core)};`,
        `const myPlugin = definePlugin({ name: "test:mine", setup: () => () => {} });`,
        `export default defineConfig({ plugins: [myPlugin()], defaults: { memoryLimit: "1g" } });`,
      ].join("\n"),
    });
    const config = await loadConfig({ cwd: dir });
    expect(config.plugins.map((p) => p.name)).toEqual(["test:mine"]);
    expect(config.defaults).toEqual({ memoryLimit: "1g" });
  });

  it("loads an isol8.config.mts", async () => {
    const dir = project({ "isol8.config.mts": "export default { defaults: { network: 'host' } };\n" });
    const config = await loadConfig({ cwd: dir });
    expect(config.defaults).toEqual({ network: "host" });
    expect(config.filepath).toBe(join(dir, "isol8.config.mts"));
  });

  it("loads an isol8.config.json", async () => {
    const dir = project({ "isol8.config.json": JSON.stringify({ defaults: { pidsLimit: 32 } }) });
    const config = await loadConfig({ cwd: dir });
    expect(config.defaults).toEqual({ pidsLimit: 32 });
    expect(config.filepath).toBe(join(dir, "isol8.config.json"));
  });

  it("loads an isol8.config.mjs", async () => {
    const dir = project({ "isol8.config.mjs": "export default { defaults: { cpuLimit: 2 } };\n" });
    expect((await loadConfig({ cwd: dir })).defaults).toEqual({ cpuLimit: 2 });
  });

  it("loads an .isol8rc.json", async () => {
    const dir = project({ ".isol8rc.json": JSON.stringify({ defaults: { debug: true } }) });
    expect((await loadConfig({ cwd: dir })).defaults).toEqual({ debug: true });
  });

  it("loads a config that imports a local TypeScript helper", async () => {
    const dir = project({
      "helper.ts": "export const timeout: number = 7000;\n",
      "isol8.config.ts": 'import { timeout } from "./helper.ts";\nexport default { defaults: { timeoutMs: timeout } };\n',
    });
    expect((await loadConfig({ cwd: dir })).defaults).toEqual({ timeoutMs: 7000 });
  });

  it("loads a config that imports a local helper without an extension", async () => {
    const dir = project({
      "lib/limits.ts": "export const limits = { pidsLimit: 16 };\n",
      "isol8.config.ts": 'import { limits } from "./lib/limits";\nexport default { defaults: { ...limits } };\n',
    });
    expect((await loadConfig({ cwd: dir })).defaults).toEqual({ pidsLimit: 16 });
  });

  it("calls a config that exports a function and uses what it returns", async () => {
    const dir = project({ "isol8.config.ts": "export default async () => ({ defaults: { timeoutMs: 42 } });\n" });
    expect((await loadConfig({ cwd: dir })).defaults).toEqual({ timeoutMs: 42 });
  });

  it('loads the "isol8" key of package.json', async () => {
    const dir = project({ "package.json": JSON.stringify({ name: "pkg", isol8: { defaults: { timeoutMs: 1234 } } }) });
    const config = await loadConfig({ cwd: dir });
    expect(config.defaults).toEqual({ timeoutMs: 1234 });
    expect(config.filepath).toBe(join(dir, "package.json"));
  });

  it("skips a package.json without an isol8 key and finds the config file beside it", async () => {
    const dir = project({ "isol8.config.json": JSON.stringify({ defaults: { timeoutMs: 9 } }) });
    expect((await loadConfig({ cwd: dir })).filepath).toBe(join(dir, "isol8.config.json"));
  });

  it("returns an empty config with no file path for a directory without a config", async () => {
    const config = await loadConfig({ cwd: project() });
    expect(config).toMatchObject({ plugins: [], defaults: {} });
    expect(config.filepath).toBeUndefined();
  });

  it("finds the project's config from a subdirectory", async () => {
    const dir = project({ "isol8.config.json": JSON.stringify({ defaults: { timeoutMs: 77 } }), "src/deep/.keep": "" });
    const config = await loadConfig({ cwd: join(dir, "src", "deep") });
    expect(config.defaults).toEqual({ timeoutMs: 77 });
    expect(config.filepath).toBe(join(dir, "isol8.config.json"));
  });

  it("stops searching at the nearest package.json", async () => {
    const dir = project({
      "isol8.config.json": JSON.stringify({ defaults: { timeoutMs: 77 } }),
      "packages/inner/package.json": JSON.stringify({ name: "inner" }),
    });
    const config = await loadConfig({ cwd: join(dir, "packages", "inner") });
    expect(config.filepath).toBeUndefined();
    expect(config.defaults).toEqual({});
  });

  it("loads the file given as path, whatever its name", async () => {
    const dir = project({ "configs/custom.ts": "export default { defaults: { timeoutMs: 11 } };\n" });
    const config = await loadConfig({ path: join(dir, "configs", "custom.ts") });
    expect(config.defaults).toEqual({ timeoutMs: 11 });
    expect(config.filepath).toBe(join(dir, "configs", "custom.ts"));
  });

  it("throws a ConfigError with code ISOL8_ERR_CONFIG_NOT_FOUND when path names a missing file", async () => {
    const missing = join(project(), "nope.config.ts");
    const error = await loadError({ path: missing });
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.code).toBe("ISOL8_ERR_CONFIG_NOT_FOUND");
    expect(error.message).toBe(`Config file not found: ${missing}`);
    expect(error.filepath).toBe(missing);
  });

  it("throws a ConfigError naming the file and the key for an unknown key", async () => {
    const dir = project({ "isol8.config.ts": "export default { default: { timeoutMs: 5000 } };\n" });
    const error = await loadError({ cwd: dir });
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.code).toBe("ISOL8_ERR_CONFIG_INVALID");
    expect(error.message).toContain(join(dir, "isol8.config.ts"));
    expect(error.message).toContain('"default"');
    expect(error.filepath).toBe(join(dir, "isol8.config.ts"));
  });

  it("throws a ConfigError naming the file and defaults.memoryLimit for a bad size", async () => {
    const dir = project({ "isol8.config.json": JSON.stringify({ defaults: { memoryLimit: "lots" } }) });
    const error = await loadError({ cwd: dir });
    expect(error.message).toContain(join(dir, "isol8.config.json"));
    expect(error.message).toContain("defaults.memoryLimit");
  });

  it("throws a ConfigError that says the config could not be loaded for a config that does not parse", async () => {
    const dir = project({ "isol8.config.json": "{ not json" });
    const error = await loadError({ cwd: dir });
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.code).toBe("ISOL8_ERR_CONFIG_INVALID");
    expect(error.message).toMatch(/^Could not load the isol8 config\b/);
  });

  it("throws a ConfigError for a config whose code throws while loading", async () => {
    const dir = project({ "isol8.config.ts": 'throw new Error("broken config");\nexport default {};\n' });
    const error = await loadError({ cwd: dir });
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain("broken config");
  });

  it("names the file that failed to load when the config was found by searching", async () => {
    const dir = project({ "isol8.config.ts": 'throw new Error("broken config");\nexport default {};\n' });
    const error = await loadError({ cwd: dir });
    expect(error.message).toContain(join(dir, "isol8.config.ts"));
    expect(error.filepath).toBe(join(dir, "isol8.config.ts"));
  });

  it("names the file in a load failure when it was given as path", async () => {
    const dir = project({ "broken.ts": 'throw new Error("broken config");\nexport default {};\n' });
    const error = await loadError({ path: join(dir, "broken.ts") });
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain(join(dir, "broken.ts"));
    expect(error.filepath).toBe(join(dir, "broken.ts"));
  });

  // error escapes as a plain Error instead of a ConfigError naming the file.
  it("throws a ConfigError naming the file for a config function that throws", async () => {
    const dir = project({ "isol8.config.ts": 'export default () => { throw new Error("no env"); };\n' });
    const error = await loadError({ cwd: dir });
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain(join(dir, "isol8.config.ts"));
    expect(error.message).toContain("no env");
  });

  it("passes an isol8 error the config throws on purpose through unchanged", async () => {
    const core = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "kit", "src", "errors.ts");
    const dir = project({
      "isol8.config.ts": `import { NotSupportedError } from ${JSON.stringify(core)};\nexport default () => { throw new NotSupportedError("nope"); };\n`,
    });
    const error = await loadError({ cwd: dir });
    expect((error as { code?: string }).code).toBe("ISOL8_ERR_NOT_SUPPORTED");
  });
});
