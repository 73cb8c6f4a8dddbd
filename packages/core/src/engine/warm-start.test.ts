import { describe, expect, it } from "vitest";
import { sameStartupEnv } from "./sandboxes.js";

describe("sameStartupEnv: may a warm start run a program with this environment?", () => {
  const python = /^(PYTHON|LC_|LANG$|LANGUAGE$|HOME$)/;

  it("only the variables read at start-up count", () => {
    expect(sameStartupEnv(python, { PYTHONUNBUFFERED: "1" }, { PYTHONUNBUFFERED: "1", API_TOKEN: "x", GREETING: "hi" })).toBe(true);
  });

  it("a start-up variable changed, added or removed means no", () => {
    expect(sameStartupEnv(python, { PYTHONUNBUFFERED: "1" }, { PYTHONUNBUFFERED: "0" })).toBe(false);
    expect(sameStartupEnv(python, {}, { PYTHONHASHSEED: "0" })).toBe(false);
    expect(sameStartupEnv(python, { PYTHONPATH: "/sandbox/.isol8/python" }, {})).toBe(false);
    expect(sameStartupEnv(python, {}, { HOME: "/tmp" })).toBe(false);
    expect(sameStartupEnv(python, {}, { LC_ALL: "C" })).toBe(false);
  });

  it("names that merely contain a start-up prefix do not count", () => {
    expect(sameStartupEnv(python, {}, { MY_PYTHONPATH: "x", HOMEPAGE: "y", LANGUAGES: "z" })).toBe(true);
  });
});
