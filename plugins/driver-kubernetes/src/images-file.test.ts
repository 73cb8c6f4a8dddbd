import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { baseSandboxSpec, executorMainProcess } from "@isol8/core";
import { engineOptionsSchema } from "@isol8/kit";
import { afterAll, describe, expect, it } from "vitest";
import { kubernetesDriverOptionsSchema } from "./options.js";
import { podFromSpec, SANDBOX_CONTAINER } from "./pod-spec.js";

const UID = 1_234_567_890;
const IMAGE = "isol8/python:5f03bcec2a8b";
const DIGEST = "sha256:" + "b".repeat(64);
const REFERENCE = `registry.example:5000/isol8/python@${DIGEST}`;
const dir = mkdtempSync(join(tmpdir(), "isol8-images-file-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A file as `isol8 setup --push registry.example:5000/isol8` writes it. */
function writeImagesFile(name: string, images: Record<string, unknown>): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify({ registry: "registry.example:5000/isol8", images }));
  return path;
}

const sandboxImage = (options: ReturnType<typeof kubernetesDriverOptionsSchema.parse>, image: string) =>
  podFromSpec(
    { ...baseSandboxSpec(engineOptionsSchema.parse({}), image, UID, executorMainProcess(UID)), labels: { "isol8.managed": "true" } },
    { ...options, acceptWeaker: { tmpfsExec: true, nodeLogs: true }, nodePodPidsLimit: 64 },
  ).spec!.containers.find((c) => c.name === SANDBOX_CONTAINER)!.image;

/** The one issue the options report, with its path: what the plugin's validation shows the user. */
function refusal(images: string): { path: PropertyKey[]; message: string } {
  const result = kubernetesDriverOptionsSchema.safeParse({ images });
  expect(result.success).toBe(false);
  expect(result.error!.issues).toHaveLength(1);
  const [issue] = result.error!.issues;
  return { path: issue!.path, message: issue!.message };
}

describe("the images option", () => {
  it("reads the file isol8 setup --push wrote: the Pod names the image by its pushed digest, with its labels", () => {
    const path = writeImagesFile("isol8-images.json", { [IMAGE]: { name: "python", reference: REFERENCE, labels: { "isol8.executor": "4" } } });
    const options = kubernetesDriverOptionsSchema.parse({ images: path });
    expect(options.images).toEqual({ [IMAGE]: { reference: REFERENCE, labels: { "isol8.executor": "4" } } });
    expect(sandboxImage(options, IMAGE)).toBe(REFERENCE);
  });

  it("takes the map inline as before, and an image it does not list keeps its local name (the control)", () => {
    const options = kubernetesDriverOptionsSchema.parse({ images: { [IMAGE]: { reference: REFERENCE } } });
    expect(sandboxImage(options, IMAGE)).toBe(REFERENCE);
    expect(sandboxImage(options, "isol8/node:97f0856ef622")).toBe("isol8/node:97f0856ef622");
  });

  it("refuses a missing file, naming the option and the file", () => {
    const missing = join(dir, "absent.json");
    const issue = refusal(missing);
    expect(issue.path).toEqual(["images"]);
    expect(issue.message).toMatch(/^images: cannot read ".*absent\.json" \(ENOENT\); write it with isol8 setup --push/);
  });

  it("refuses a file entry that is not by digest, naming the image", () => {
    const path = writeImagesFile("by-tag.json", { [IMAGE]: { reference: "registry.example:5000/isol8/python:5f03bcec2a8b", labels: {} } });
    const issue = refusal(path);
    expect(issue.path).toEqual(["images"]);
    expect(issue.message).toMatch(/by-tag\.json": images\["isol8\/python:5f03bcec2a8b"\]: expected an image reference by digest/);
  });

  it("refuses a file that is not JSON, naming the file", () => {
    const path = join(dir, "broken.json");
    writeFileSync(path, "{ not json");
    const issue = refusal(path);
    expect(issue.path).toEqual(["images"]);
    expect(issue.message).toMatch(/^images: ".*broken\.json" is not JSON/);
  });
});
