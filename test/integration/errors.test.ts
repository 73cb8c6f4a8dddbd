import { describe, expect, test } from "vitest";
import {
  ConfigError,
  DockerUnavailableError,
  ImageMissingError,
  InvalidOptionsError,
  InvalidRequestError,
  UnknownRuntimeError,
  validateConfig,
} from "@isol8/core";
import Docker from "dockerode";
import { DockerIsol8 } from "isol8";
import { isol8Containers } from "../helpers.js";

describe("bad input gets a clear, typed error and leaves nothing behind", () => {
  test("unknown runtime names the registered ones", async () => {
    const engine = new DockerIsol8();
    const error = await engine.execute({ runtime: "ruby", code: "puts 1" }).catch((e) => e);
    expect(error).toBeInstanceOf(UnknownRuntimeError);
    expect(error.code).toBe("ISOL8_ERR_UNKNOWN_RUNTIME");
    expect(error.message).toMatch(/python, node, bun, deno, bash/);
    await engine.stop();
    expect(await isol8Containers(engine.id)).toEqual([]);
  });

  test("empty code, bad timeouts and unknown request keys name the field", async () => {
    const engine = new DockerIsol8();
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ runtime: "python", code: "" }, /request\.code: expected non-empty code/],
      [{ runtime: "python", code: "   \n" }, /request\.code: expected non-empty code/],
      [{ runtime: "python", code: "print(1)", timeoutMs: 0 }, /request\.timeoutMs: expected a positive number of milliseconds/],
      [{ runtime: "python", code: "print(1)", timeoutMs: -5 }, /request\.timeoutMs/],
      [{ runtime: "python", code: "print(1)", timeoutMs: "soon" }, /request\.timeoutMs: expected a number of milliseconds/],
      [{ runtime: "python", code: "print(1)", colour: "red" }, /colour/],
      [{ runtime: "python", code: "print(1)", files: { "../etc/passwd": "x" } }, /request\.files\["\.\.\/etc\/passwd"\].*"\.\."/],
      [{ runtime: "python", code: "print(1)", outputPaths: ["/etc/shadow"] }, /request\.outputPaths\[0\].*outside/],
    ];
    for (const [request, message] of cases) {
      const error = await engine.execute(request as never).catch((e) => e);
      expect(error, JSON.stringify(request)).toBeInstanceOf(InvalidRequestError);
      expect(error.code).toBe("ISOL8_ERR_INVALID_REQUEST");
      expect(error.message).toMatch(message);
    }
    await engine.stop();
    expect(await isol8Containers(engine.id)).toEqual([]);
  });

  test("engine options that do not parse are refused at construction, naming the option", () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ memoryLimit: "lots" }, /memoryLimit: expected a positive size/],
      [{ timeoutMs: 0 }, /timeoutMs/],
      [{ cpuLimit: -1 }, /cpuLimit/],
      [{ network: "bogus" }, /network mode "bogus"/],
      [{ poolStrategy: "turbo" }, /pool strategy "turbo".*plugin-pool-turbo/],
      [{ memorylimit: "1g" }, /memorylimit/],
    ];
    for (const [options, message] of cases) {
      let error: unknown;
      try {
        new DockerIsol8(options as never);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(options)).toBeInstanceOf(InvalidOptionsError);
      expect((error as Error).message).toMatch(message);
    }
  });

  test("an unknown config key names the key", () => {
    expect(() => validateConfig({ default: {} }, "/x/isol8.config.ts")).toThrow(ConfigError);
    expect(() => validateConfig({ default: {} }, "/x/isol8.config.ts")).toThrow(/\/x\/isol8\.config\.ts.*default/);
    expect(() => validateConfig({ defaults: { pidLimit: 3 } })).toThrow(/defaults.*pidLimit/);
  });

  test("a Docker engine that does not answer says how to start one", async () => {
    const engine = new DockerIsol8({}, { docker: new Docker({ socketPath: "/nonexistent/docker.sock" }) });
    const error = await engine.start().catch((e) => e);
    expect(error).toBeInstanceOf(DockerUnavailableError);
    expect(error.code).toBe("ISOL8_ERR_DOCKER_UNAVAILABLE");
    expect(error.message).toMatch(/\/nonexistent\/docker\.sock/);
    expect(error.message).toMatch(/ensure-docker\.sh|systemctl start docker/);
  });

  test("a missing image says to run isol8 setup", async () => {
    const engine = new DockerIsol8({ image: "isol8/not-built:0000" });
    const error = await engine.execute({ runtime: "python", code: "print(1)" }).catch((e) => e);
    expect(error).toBeInstanceOf(ImageMissingError);
    expect(error.code).toBe("ISOL8_ERR_IMAGE_MISSING");
    expect(error.message).toMatch(/isol8 setup/);
    await engine.stop();
    expect(await isol8Containers(engine.id)).toEqual([]);
  });
});
