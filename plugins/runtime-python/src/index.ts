import { definePlugin, RICH_OUTPUTS_DIR, RICH_OUTPUTS_ENV, type PackageInstaller, type RuntimeDefinition } from "@isol8/kit";
import * as z from "zod";
import { PYTHON_DISPLAY_DOCKERFILE, PYTHON_DISPLAY_FILES, PYTHON_DISPLAY_HASH, PYTHON_MPL_BACKEND } from "./display.js";
import { pythonContextKernel } from "./context-kernel.js";
import { PYTHON_WARM_START_COMMAND, PYTHON_WARM_START_CONTEXT, PYTHON_WARM_START_DOCKERFILE, PYTHON_WARM_START_HASH } from "./warm-start.js";

/** Where installPackages puts packages: inside the sandbox, on PYTHONPATH. */
const SITE = "/sandbox/.isol8/python";

export const pythonRuntimeOptions = z.strictObject({
  /** Package index for installPackages (pip --index-url), e.g. a mirror or a proxy's. Default: pip's (PyPI). */
  indexUrl: z.url({ error: "expected the index URL, e.g. https://pypi.example.com/simple" }).optional(),
  /** Extra indexes searched after indexUrl. */
  extraIndexUrls: z.array(z.url()).default([]),
});
export type PythonRuntimeOptions = z.input<typeof pythonRuntimeOptions>;

/** pip into the sandbox: `--target` keeps Debian's system packages untouched (PEP 668) and the root read-only. */
export function pythonInstaller(options: z.output<typeof pythonRuntimeOptions> = { extraIndexUrls: [] }): PackageInstaller {
  // What every pip install isol8 runs shares: into the sandbox, and into a derived image.
  const pipInstall = ["python3", "-m", "pip", "install", "--no-input", "--disable-pip-version-check", "--no-cache-dir"];
  const index = [...(options.indexUrl ? ["--index-url", options.indexUrl] : []), ...options.extraIndexUrls.flatMap((url) => ["--extra-index-url", url])];
  return {
    // name, optional extras, optional version constraint: no spaces, URLs, paths or flags.
    validName:
      /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:\[[A-Za-z0-9._,-]+\])?(?:(?:==|>=|<=|~=|!=|<|>)[A-Za-z0-9.*+!_-]+(?:,(?:==|>=|<=|~=|!=|<|>)[A-Za-z0-9.*+!_-]+)*)?$/,
    command: (packages) => [...pipInstall, "--no-warn-script-location", "--target", SITE, ...index, ...packages],
    env: ({ caBundle }) => ({ ...(caBundle ? { PIP_CERT: caBundle, SSL_CERT_FILE: caBundle } : {}) }),
    runEnv: { PYTHONPATH: SITE },
    // Derived images: as root into /usr/local/lib/python3*/dist-packages, on Debian python3's sys.path.
    imageCommand: (packages) => [...pipInstall, "--break-system-packages", "--root-user-action=ignore", ...index, ...packages],
  };
}

/** Python 3 from Debian bookworm's packages (containers reach Debian's mirror, not PyPI or python.org). */
export const pythonRuntimeDefinition: RuntimeDefinition = {
  name: "python",
  extensions: [".py"],
  command: (file) => ["python3", file],
  // Unbuffered so output interleaves as written; no .pyc files: the root filesystem is read-only.
  // display() writes rich outputs for the engine to read back (src/display.ts); matplotlib
  // draws with isol8's backend, which displays figures as PNG.
  env: {
    PYTHONUNBUFFERED: "1",
    PYTHONDONTWRITEBYTECODE: "1",
    PIP_DISABLE_PIP_VERSION_CHECK: "1",
    [RICH_OUTPUTS_ENV]: RICH_OUTPUTS_DIR,
    MPLBACKEND: PYTHON_MPL_BACKEND,
  },
  image: {
    // Debian's python3 is fixed by the base suite (bookworm: 3.11); bump to pick up a recipe change.
    version: `2 display@${PYTHON_DISPLAY_HASH} warm-start@${PYTHON_WARM_START_HASH}`,
    // pip stays for later package installs into the sandbox.
    dockerfile:
      "RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip && rm -rf /var/lib/apt/lists/*\n" +
      PYTHON_DISPLAY_DOCKERFILE +
      PYTHON_WARM_START_DOCKERFILE,
    context: async () => ({
      ...Object.fromEntries(Object.entries(PYTHON_DISPLAY_FILES).map(([name, content]) => [name, { content, mode: 0o644 }])),
      ...PYTHON_WARM_START_CONTEXT,
    }),
  },
  packages: pythonInstaller(),
  // The interpreter starts between executions and waits (src/warm-start.ts); what it reads at
  // start-up: PYTHON* variables, the locale, HOME (the user site directory).
  warmStart: { command: PYTHON_WARM_START_COMMAND, startupEnv: /^(PYTHON|LC_|LANG$|LANGUAGE$|HOME$)/ },
  // Interpreter contexts: cells in one persistent __main__, as a notebook runs them (src/context-kernel.ts).
  context: pythonContextKernel,
};

export { PYTHON_WARM_START, PYTHON_WARM_START_CODE, PYTHON_WARM_START_COMMAND, PYTHON_WARM_START_SOURCE } from "./warm-start.js";
export { PYTHON_CONTEXT_KERNEL, pythonContextKernel } from "./context-kernel.js";

export const pythonRuntime = definePlugin({
  name: "isol8:runtime-python",
  options: pythonRuntimeOptions,
  setup: (options) => (kit) => kit.runtimes.register("python", { ...pythonRuntimeDefinition, packages: pythonInstaller(options) }, "isol8:runtime-python"),
});

export default pythonRuntime;
