import { describe, expect, it } from "vitest";
import {
  AdmissionDeniedError,
  ConfigError,
  DockerUnavailableError,
  ExecutionError,
  ImageBuildError,
  ImageMissingError,
  InvalidOptionsError,
  InvalidRequestError,
  Isol8Error,
  NotStartedError,
  NotSupportedError,
  PluginError,
  UnknownNameError,
  UnknownRuntimeError,
  EngineStoppedError,
  SandboxGoneError,
} from "./errors.js";

describe("error codes", () => {
  const cases: Array<[string, Isol8Error, string]> = [
    ["InvalidRequestError", new InvalidRequestError("m"), "ISOL8_ERR_INVALID_REQUEST"],
    ["InvalidOptionsError", new InvalidOptionsError("m"), "ISOL8_ERR_INVALID_OPTIONS"],
    ["ConfigError", new ConfigError("m"), "ISOL8_ERR_CONFIG_INVALID"],
    ["ConfigError (not found)", new ConfigError("m", { code: "ISOL8_ERR_CONFIG_NOT_FOUND" }), "ISOL8_ERR_CONFIG_NOT_FOUND"],
    ["UnknownRuntimeError", new UnknownRuntimeError("ruby", []), "ISOL8_ERR_UNKNOWN_RUNTIME"],
    ["UnknownNameError", new UnknownNameError("pool strategy", "x", []), "ISOL8_ERR_UNKNOWN_NAME"],
    ["PluginError", new PluginError("p", "apply", new Error("x")), "ISOL8_ERR_PLUGIN"],
    ["DockerUnavailableError", new DockerUnavailableError("d"), "ISOL8_ERR_DOCKER_UNAVAILABLE"],
    ["ImageMissingError", new ImageMissingError("python", "isol8:python"), "ISOL8_ERR_IMAGE_MISSING"],
    ["ImageBuildError", new ImageBuildError("m"), "ISOL8_ERR_IMAGE_BUILD"],
    ["NotSupportedError", new NotSupportedError("m"), "ISOL8_ERR_NOT_SUPPORTED"],
    ["NotStartedError", new NotStartedError("execute"), "ISOL8_ERR_NOT_STARTED"],
    ["EngineStoppedError", new EngineStoppedError(), "ISOL8_ERR_ENGINE_STOPPED"],
    ["SandboxGoneError", new SandboxGoneError("0123456789abcdef", "killed"), "ISOL8_ERR_SANDBOX_GONE"],
    ["AdmissionDeniedError", new AdmissionDeniedError("quota"), "ISOL8_ERR_ADMISSION_DENIED"],
    ["ExecutionError", new ExecutionError("m"), "ISOL8_ERR_EXECUTION"],
  ];

  it.each(cases)("%s has its stable code", (_, error, code) => {
    expect(error.code).toBe(code);
  });

  it.each(cases)("%s is an Error and an Isol8Error", (_, error) => {
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(Isol8Error);
    expect(Isol8Error.isInstance(error)).toBe(true);
  });

  it.each(cases)("%s is named after its class", (name, error) => {
    expect(error.name).toBe(name.split(" ")[0]);
  });
});

describe("Isol8Error", () => {
  it("keeps the code, message and cause it is given", () => {
    const cause = new Error("root");
    const error = new Isol8Error("ISOL8_ERR_EXECUTION", "failed", { cause });
    expect(error.code).toBe("ISOL8_ERR_EXECUTION");
    expect(error.message).toBe("failed");
    expect(error.cause).toBe(cause);
    expect(error.name).toBe("Isol8Error");
  });

  it("has no cause property when none is given", () => {
    expect("cause" in new Isol8Error("ISOL8_ERR_EXECUTION", "failed")).toBe(false);
  });

  it("records the plugin it comes from only when given one", () => {
    expect(new Isol8Error("ISOL8_ERR_PLUGIN", "m", { plugin: "vendor:x" }).plugin).toBe("vendor:x");
    expect(new Isol8Error("ISOL8_ERR_PLUGIN", "m").plugin).toBeUndefined();
  });

  it("isInstance rejects plain errors and non-objects", () => {
    expect(Isol8Error.isInstance(new Error("x"))).toBe(false);
    expect(Isol8Error.isInstance(null)).toBe(false);
    expect(Isol8Error.isInstance(undefined)).toBe(false);
    expect(Isol8Error.isInstance("ISOL8_ERR_EXECUTION")).toBe(false);
    expect(Isol8Error.isInstance({ code: "ISOL8_ERR_EXECUTION" })).toBe(false);
  });

  it("isInstance accepts an error from another copy of the core (same global brand)", () => {
    const foreign = Object.assign(new Error("from another copy"), { [Symbol.for("isol8.error")]: true, code: "ISOL8_ERR_EXECUTION" });
    expect(foreign instanceof Isol8Error).toBe(false);
    expect(Isol8Error.isInstance(foreign)).toBe(true);
  });

  it("isInstance rejects an object whose brand is not exactly true", () => {
    expect(Isol8Error.isInstance({ [Symbol.for("isol8.error")]: "yes" })).toBe(false);
  });
});

describe("error messages", () => {
  it("UnknownRuntimeError lists the registered runtimes and the plugin to add", () => {
    const error = new UnknownRuntimeError("ruby", ["python", "node"]);
    expect(error.message).toBe(
      'Unknown runtime "ruby". Registered runtimes: python, node. To add it, register a runtime plugin (e.g. @isol8/plugin-runtime-ruby) in isol8.config.ts.',
    );
    expect(error.runtime).toBe("ruby");
    expect(error.registered).toEqual(["python", "node"]);
  });

  it("UnknownRuntimeError says (none) when no runtime is registered", () => {
    expect(new UnknownRuntimeError("python", []).message).toContain("Registered runtimes: (none).");
  });

  it("UnknownNameError names the kind, the name, the registered names and the hint", () => {
    expect(new UnknownNameError("audit sink", "s3", ["file"], "Add @isol8/plugin-audit-s3.").message).toBe(
      'Unknown audit sink "s3". Registered: file. Add @isol8/plugin-audit-s3.',
    );
    expect(new UnknownNameError("audit sink", "s3", []).message).toBe('Unknown audit sink "s3". Registered: (none).');
  });

  it("ImageMissingError tells to run isol8 setup for the runtime", () => {
    const error = new ImageMissingError("python", "isol8/python:abc123");
    expect(error.message).toContain("isol8/python:abc123");
    expect(error.message).toContain("'isol8 setup'");
    expect(error.message).toContain("isol8 setup --runtime python");
    expect(error.image).toBe("isol8/python:abc123");
  });

  it("DockerUnavailableError gives the detail and says how to start an engine", () => {
    const cause = new Error("connect ENOENT");
    const error = new DockerUnavailableError("/var/run/docker.sock: connect ENOENT", { cause });
    expect(error.message).toContain("(/var/run/docker.sock: connect ENOENT)");
    expect(error.message).toContain("sudo systemctl start docker");
    expect(error.message).toContain("scripts/ensure-docker.sh");
    expect(error.cause).toBe(cause);
  });

  it("NotStartedError names the method and says to call start()", () => {
    expect(new NotStartedError("execute").message).toBe("execute() was called before start(). Call 'await engine.start()' first.");
  });

  it("AdmissionDeniedError gives the reason and, when known, the plugin", () => {
    expect(new AdmissionDeniedError("quota exceeded").message).toBe("Execution denied: quota exceeded");
    const error = new AdmissionDeniedError("quota exceeded", "vendor:quota");
    expect(error.message).toBe("Execution denied by vendor:quota: quota exceeded");
    expect(error.plugin).toBe("vendor:quota");
  });

  it("PluginError names the plugin and the phase, and keeps the cause", () => {
    const cause = new TypeError("bad");
    const error = new PluginError("vendor:x", "beforeExec", cause);
    expect(error.message).toBe("Plugin vendor:x failed in beforeExec: bad");
    expect(error.plugin).toBe("vendor:x");
    expect(error.cause).toBe(cause);
  });

  it("PluginError renders a non-Error cause as text", () => {
    expect(new PluginError("p", "apply", 42).message).toBe("Plugin p failed in apply: 42");
  });

  it("ConfigError records its file path only when given one", () => {
    expect(new ConfigError("m", { filepath: "/p/isol8.config.ts" }).filepath).toBe("/p/isol8.config.ts");
    expect(new ConfigError("m").filepath).toBeUndefined();
  });
});
