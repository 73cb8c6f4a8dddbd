import { definePlugin, type RuntimeDefinition } from "@isol8/kit";
import { pythonInstaller, pythonRuntimeDefinition, pythonRuntimeOptions, type PythonRuntimeOptions } from "@isol8/plugin-runtime-python";

/** Debian bookworm's packages this image adds to the python runtime's (their Debian dependencies come with them). */
export const PYTHON_DATA_PACKAGES = ["python3-numpy", "python3-pandas", "python3-matplotlib"] as const;

/**
 * matplotlib needs fonttools, which depends on "python3-scipy | python3-munkres"; left to choose,
 * apt takes scipy, and in bookworm scipy brings pythran with g++, Boost and OpenBLAS headers (the
 * image grows from about 0.3 to 1.2 GB). Naming munkres first meets that dependency without them.
 */
const LEAN_ALTERNATIVES = ["python3-munkres"] as const;

/** This plugin's own layer: bump on any change to it (the python recipe's version is part of the image's too). */
const DATA_LAYER_VERSION = "2";

/**
 * The python runtime's definition with numpy, pandas and matplotlib in its image. Everything
 * else is python's: `python3 FILE`, its environment (with display() and its matplotlib backend,
 * which needs no display and sends figures back as PNG), warm start and package installer. Its
 * image starts with python's recipe (and build context), so the two images share those layers.
 */
export const pythonDataRuntimeDefinition: RuntimeDefinition = {
  ...pythonRuntimeDefinition,
  name: "python-data",
  // None: ".py" is python's, and a second runtime claiming it would make `isol8 run FILE.py`
  // ambiguous. Select this one by name (`isol8 run -r python-data FILE.py`, `runtime: "python-data"`).
  extensions: [],
  image: {
    ...pythonRuntimeDefinition.image,
    version: `${DATA_LAYER_VERSION}+python.${pythonRuntimeDefinition.image.version}`,
    // Recommends stay out (--no-install-recommends): no GUI toolkits, BLAS/LAPACK are Debian's reference ones.
    dockerfile:
      pythonRuntimeDefinition.image.dockerfile.replace(/\n?$/, "\n") +
      `RUN apt-get update && apt-get install -y --no-install-recommends ${[...LEAN_ALTERNATIVES, ...PYTHON_DATA_PACKAGES].join(" ")} && rm -rf /var/lib/apt/lists/*\n`,
  },
};

export type PythonDataRuntimeOptions = PythonRuntimeOptions;

/** Registers `python-data`. Options are python's (`indexUrl`, `extraIndexUrls` for installPackages). */
export const pythonDataRuntime = definePlugin({
  name: "isol8:runtime-python-data",
  options: pythonRuntimeOptions,
  setup: (options) => (kit) =>
    kit.runtimes.register("python-data", { ...pythonDataRuntimeDefinition, packages: pythonInstaller(options) }, "isol8:runtime-python-data"),
});

export default pythonDataRuntime;
