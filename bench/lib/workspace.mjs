// Loads the workspace's built packages (their dist, as users and `isol8 serve` run them) by name,
// whether or not they are linked at the root, and says when a dist is older than its sources.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

let index;
function packageIndex() {
  if (index) return index;
  index = new Map();
  for (const group of ["packages", "plugins"]) {
    const base = join(ROOT, group);
    if (!existsSync(base)) continue;
    for (const entry of readdirSync(base)) {
      const file = join(base, entry, "package.json");
      if (!existsSync(file)) continue;
      try {
        const pkg = JSON.parse(readFileSync(file, "utf8"));
        index.set(pkg.name, { dir: join(base, entry), pkg });
      } catch {
        // a package.json being written right now: skip it
      }
    }
  }
  return index;
}

function entryOf(pkg) {
  const dot = pkg.exports?.["."];
  const target = typeof dot === "string" ? dot : (dot?.default ?? dot?.import);
  return target ?? pkg.main ?? "./dist/index.js";
}

function newestMtime(dir) {
  let newest = 0;
  const walk = (d) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (/\.(ts|c|h)$/.test(entry.name) && !/\.test\.ts$/.test(entry.name)) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  if (existsSync(dir)) walk(dir);
  return newest;
}

/** Staleness notes gathered while loading (the report prints them). */
export const distNotes = [];

/**
 * Imports a workspace package's built entry. Throws an Error whose message says what to run
 * when the package is missing or not built.
 */
export async function importWorkspace(name) {
  const found = packageIndex().get(name);
  if (!found) throw new Error(`${name} is not a package of this workspace`);
  const entry = join(found.dir, entryOf(found.pkg));
  if (!existsSync(entry)) throw new Error(`${name} is not built (${entry.slice(ROOT.length + 1)} is missing): run pnpm build`);
  const src = newestMtime(join(found.dir, "src"));
  const built = statSync(entry).mtimeMs;
  if (src > built + 1000) {
    const note = `${name}: dist is older than src by ${Math.round((src - built) / 1000)} s (the bench measures the built dist; run pnpm build for the latest code)`;
    if (!distNotes.includes(note)) distNotes.push(note);
  }
  return import(pathToFileURL(entry).href);
}

export function gitInfo() {
  try {
    const head = readFileSync(join(ROOT, ".git", "HEAD"), "utf8").trim();
    if (!head.startsWith("ref: ")) return { commit: head };
    const ref = head.slice(5);
    const refFile = join(ROOT, ".git", ref);
    if (existsSync(refFile)) return { branch: ref.replace("refs/heads/", ""), commit: readFileSync(refFile, "utf8").trim() };
    const packed = readFileSync(join(ROOT, ".git", "packed-refs"), "utf8");
    const line = packed.split("\n").find((l) => l.endsWith(` ${ref}`));
    return { branch: ref.replace("refs/heads/", ""), commit: line?.split(" ")[0] };
  } catch {
    return {};
  }
}
