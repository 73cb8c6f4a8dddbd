import { describe, expect, test } from "vitest";
import { InvalidOptionsError, Kit, applyPlugins, silentLogger } from "@isol8/kit";
import { pythonRuntime, pythonRuntimeDefinition } from "@isol8/plugin-runtime-python";
import { PYTHON_DATA_PACKAGES, pythonDataRuntime, pythonDataRuntimeDefinition } from "./index.js";

function kitWith(...plugins: Parameters<typeof applyPlugins>[1]) {
  const kit = new Kit(silentLogger);
  applyPlugins(kit, plugins);
  return kit;
}

describe("python-data is the python runtime's recipe plus Debian's numpy, pandas and matplotlib", () => {
  test("its image recipe is python's followed by one apt-get layer of the three packages (munkres first, so apt does not choose scipy)", () => {
    const { dockerfile, version } = pythonDataRuntimeDefinition.image;
    expect(dockerfile.startsWith(pythonRuntimeDefinition.image.dockerfile)).toBe(true);
    const added = dockerfile.slice(pythonRuntimeDefinition.image.dockerfile.length);
    expect(added).toBe(
      "RUN apt-get update && apt-get install -y --no-install-recommends python3-munkres python3-numpy python3-pandas python3-matplotlib && rm -rf /var/lib/apt/lists/*\n",
    );
    expect(PYTHON_DATA_PACKAGES).toEqual(["python3-numpy", "python3-pandas", "python3-matplotlib"]);
    // python's recipe version is part of this one's: a change to python's image rebuilds this one.
    expect(version).toBe(`2+python.${pythonRuntimeDefinition.image.version}`);
  });

  test("it runs programs as python does: the same command, warm start, environment and build context", () => {
    expect(pythonDataRuntimeDefinition.command("/sandbox/main")).toEqual(pythonRuntimeDefinition.command("/sandbox/main"));
    expect(pythonDataRuntimeDefinition.warmStart).toBe(pythonRuntimeDefinition.warmStart);
    expect(pythonDataRuntimeDefinition.env).toBe(pythonRuntimeDefinition.env);
    expect(pythonDataRuntimeDefinition.image.context).toBe(pythonRuntimeDefinition.image.context);
  });

  test("it claims no file extension, so `.py` stays python's", () => {
    expect(pythonRuntimeDefinition.extensions).toEqual([".py"]);
    expect(pythonDataRuntimeDefinition.extensions).toEqual([]);
  });
});

describe("pythonDataRuntime()", () => {
  test("registers python-data beside python, owned by its plugin, with python's package installer", () => {
    const kit = kitWith(pythonRuntime(), pythonDataRuntime());
    expect(kit.runtimes.names()).toEqual(["python", "python-data"]);
    expect(kit.runtimes.owner("python-data")).toBe("isol8:runtime-python-data");
    const data = kit.runtimes.get("python-data");
    const python = kit.runtimes.get("python");
    expect(data.name).toBe("python-data");
    expect(data.packages!.command(["six"], {})).toEqual(python.packages!.command(["six"], {}));
    expect(data.packages!.runEnv).toEqual({ PYTHONPATH: "/sandbox/.isol8/python" });
  });

  test("takes python's options: indexUrl reaches its pip command", () => {
    const kit = kitWith(pythonDataRuntime({ indexUrl: "https://pypi.example.com/simple", extraIndexUrls: ["https://extra.example.com/simple"] }));
    const command = kit.runtimes.get("python-data").packages!.command(["six"], {});
    expect(command).toContain("--index-url");
    expect(command[command.indexOf("--index-url") + 1]).toBe("https://pypi.example.com/simple");
    expect(command[command.indexOf("--extra-index-url") + 1]).toBe("https://extra.example.com/simple");
  });

  test("an invalid option fails when the factory is called, naming the plugin and the option", () => {
    expect(() => pythonDataRuntime({ indexUrl: "not a url" })).toThrow(InvalidOptionsError);
    expect(() => pythonDataRuntime({ indexUrl: "not a url" })).toThrow(/isol8:runtime-python-data.*indexUrl/);
  });
});
