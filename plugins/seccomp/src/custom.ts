import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { InvalidOptionsError, formatZodError } from "@isol8/kit";
import { seccompProfileSchema, type SeccompProfile } from "./profile.js";

const OPTION = "security.seccompProfile";

/**
 * Loads and validates the profile of the `custom` mode: `security.seccompProfile` is a path to a
 * JSON file (relative paths resolve against the working directory) or the profile object itself.
 * Every failure is an InvalidOptionsError that names the option, the file and the bad field.
 */
export async function loadCustomProfile(option: unknown, cwd: string = process.cwd()): Promise<SeccompProfile> {
  if (option === undefined || option === null) {
    throw new InvalidOptionsError(`${OPTION}: seccomp mode "custom" needs a profile: a path to a JSON file or an inline profile object.`);
  }
  if (typeof option === "string") {
    if (option.trim() === "") throw new InvalidOptionsError(`${OPTION}: expected a path to a seccomp profile JSON file; got an empty string.`);
    const path = resolve(cwd, option);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : code === "EACCES" ? "permission denied" : String(error);
      throw new InvalidOptionsError(`${OPTION}: cannot read the seccomp profile file ${path}: ${why}.`, { cause: error });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new InvalidOptionsError(`${OPTION}: the seccomp profile file ${path} is not valid JSON: ${(error as Error).message}.`, { cause: error });
    }
    return validateProfile(json, `the seccomp profile file ${path}`);
  }
  if (typeof option === "object" && !Array.isArray(option)) return validateProfile(option, "the inline seccomp profile");
  throw new InvalidOptionsError(`${OPTION}: expected a path (string) or a seccomp profile object; got ${Array.isArray(option) ? "an array" : typeof option}.`);
}

/** Validates a profile against the Docker seccomp format; the error names the source and the field. */
export function validateProfile(value: unknown, source = "the seccomp profile"): SeccompProfile {
  const parsed = seccompProfileSchema.safeParse(value);
  if (!parsed.success) throw new InvalidOptionsError(`${OPTION}: ${source} is not a valid Docker seccomp profile: ${formatZodError(parsed.error, "profile")}`);
  return parsed.data;
}
