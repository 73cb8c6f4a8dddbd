import { describe, expect, test } from "vitest";
import { checkHostHeader, compileRules, evaluateLayers, evaluateRules, normalizeHost, parseAuthority, parseRequestTarget } from "./proxy-script.js";

const rules = (whitelist: string[], blacklist: string[] = []) => ({
  whitelist: compileRules(whitelist, "whitelist"),
  blacklist: compileRules(blacklist, "blacklist"),
});

describe("rule evaluation", () => {
  test("blacklist wins over a whitelist match, and the reason names the rule", () => {
    const decision = evaluateRules("api.example.com", rules([".*\\.example\\.com"], ["api\\.example\\.com"]));
    expect(decision).toEqual({ allowed: false, reason: "api.example.com matches blacklist rule /api\\.example\\.com/" });
  });
  test("an empty whitelist allows all that is not blacklisted", () => {
    expect(evaluateRules("anything.test", rules([], ["blocked\\.test"]))).toEqual({ allowed: true, rule: null });
    expect(evaluateRules("blocked.test", rules([], ["blocked\\.test"])).allowed).toBe(false);
  });
  test("a whitelist match names its rule", () => {
    expect(evaluateRules("db.internal", rules(["db\\.internal"]))).toEqual({ allowed: true, rule: "db\\.internal" });
  });
  test("a non-empty whitelist refuses other hosts, listing its rules", () => {
    const decision = evaluateRules("evil.test", rules(["good\\.test"]));
    expect(decision).toEqual({ allowed: false, reason: "evil.test matches no whitelist rule (/good\\.test/)" });
  });
  test("rules are anchored: no suffix/prefix tricks", () => {
    const r = rules(["example\\.com"]);
    for (const host of ["example.com.evil.com", "evilexample.com", "example.comx", "xexample.com"]) expect(evaluateRules(host, r).allowed).toBe(false);
    expect(evaluateRules("example.com", r).allowed).toBe(true);
    // an unescaped dot is the user's regex: it still may not extend past the host
    expect(evaluateRules("exampleXcom", rules(["example.com"])).allowed).toBe(true);
    expect(evaluateRules("exampleXcom.evil", rules(["example.com"])).allowed).toBe(false);
  });
  test("rules see the normalized host: case, trailing dot, IDNA", () => {
    const r = rules(["example\\.com", "xn--llo-nla\\.test"]);
    expect(evaluateRules(normalizeHost("EXAMPLE.COM.")!, r).allowed).toBe(true);
    expect(evaluateRules(normalizeHost("héllo.test")!, r).allowed).toBe(false);
    expect(normalizeHost("аpple.com")).toBe("xn--pple-43d.com"); // Cyrillic а: never equals apple.com
  });
  test("a bad pattern fails with its list and index", () => {
    expect(() => compileRules(["ok", "(unclosed"], "blacklist")).toThrow(/networkFilter\.blacklist\[1\]: invalid regular expression "\(unclosed"/);
  });
});

describe("host normalization", () => {
  test.each([
    ["Example.COM", "example.com"],
    ["example.com.", "example.com"],
    ["0x7f.1", "127.0.0.1"],
    ["2130706433", "127.0.0.1"],
    ["0177.0.0.1", "127.0.0.1"],
    ["127.1", "127.0.0.1"],
    ["[::1]", "::1"],
    ["[::FFFF:127.0.0.1]", "::ffff:7f00:1"],
    ["::1", "::1"],
  ])("%s → %s", (raw, expected) => expect(normalizeHost(raw)).toBe(expected));
  test.each(["", "a b", "user@host", "host/x", "host?x", "a..b", ".a", "example.com..", "[fe80::1%25eth0]", "%2e", "x".repeat(300)])("%j is refused", (raw) => {
    expect(normalizeHost(raw)).toBeNull();
  });
});

describe("request targets", () => {
  test("absolute-form http URL: host, port, raw path", () => {
    expect(parseRequestTarget("GET", "http://Example.com/a/../b?x=1#frag")).toEqual({
      ok: true,
      kind: "http",
      host: "example.com",
      port: 80,
      path: "/a/../b?x=1",
    });
    expect(parseRequestTarget("GET", "http://example.com:8080")).toEqual({ ok: true, kind: "http", host: "example.com", port: 8080, path: "/" });
    expect(parseRequestTarget("GET", "http://example.com?q")).toEqual({ ok: true, kind: "http", host: "example.com", port: 80, path: "/?q" });
    expect(parseRequestTarget("POST", "http://[::1]:81/x")).toEqual({ ok: true, kind: "http", host: "::1", port: 81, path: "/x" });
    expect(parseRequestTarget("GET", "http://0x7f000001/")).toMatchObject({ ok: true, host: "127.0.0.1" });
  });
  test("CONNECT authority-form", () => {
    expect(parseRequestTarget("CONNECT", "example.com:443")).toEqual({ ok: true, kind: "connect", host: "example.com", port: 443, path: null });
    expect(parseRequestTarget("CONNECT", "[2001:db8::1]:443")).toEqual({ ok: true, kind: "connect", host: "2001:db8::1", port: 443, path: null });
    for (const bad of ["example.com", "example.com:0", "example.com:65536", "http://example.com:443", "a@example.com:443", "example.com:443/x", ":443"]) {
      expect(parseRequestTarget("CONNECT", bad)).toMatchObject({ ok: false, status: 400 });
    }
  });
  test("origin-form, other schemes, https:// and userinfo are refused with a reason", () => {
    expect(parseRequestTarget("GET", "/index.html")).toMatchObject({ ok: false, status: 400, reason: expect.stringContaining("absolute URL") });
    expect(parseRequestTarget("GET", "ftp://example.com/")).toMatchObject({ ok: false, reason: expect.stringContaining('scheme "ftp" is not supported') });
    expect(parseRequestTarget("GET", "gopher://example.com/")).toMatchObject({ ok: false, status: 400 });
    expect(parseRequestTarget("GET", "https://example.com/")).toMatchObject({ ok: false, reason: expect.stringContaining("CONNECT") });
    expect(parseRequestTarget("GET", "http://allowed.com@evil.com/")).toMatchObject({ ok: false, reason: expect.stringContaining("credentials") });
    expect(parseRequestTarget("GET", "http://allowed.com:80@evil.com/")).toMatchObject({ ok: false });
    expect(parseRequestTarget("GET", "http:/example.com/")).toMatchObject({ ok: false });
    expect(parseRequestTarget("GET", "http://evil.com\\@allowed.com/")).toMatchObject({ ok: false });
  });
  test("authority parsing", () => {
    expect(parseAuthority("a.test", 80)).toEqual({ host: "a.test", port: 80 });
    expect(parseAuthority("a.test", null)).toBeNull();
    expect(parseAuthority("a.test:x", 80)).toBeNull();
  });
});

describe("the Host header decision: the request target wins, a mismatch is refused", () => {
  const target = { host: "allowed.test", port: 80 };
  test("a matching Host (any case, default port, trailing dot) or none is accepted", () => {
    expect(checkHostHeader([], target)).toBeNull();
    expect(checkHostHeader(["allowed.test"], target)).toBeNull();
    expect(checkHostHeader(["ALLOWED.test:80"], target)).toBeNull();
    expect(checkHostHeader(["allowed.test."], target)).toBeNull();
    expect(checkHostHeader(["allowed.test:8080"], { host: "allowed.test", port: 8080 })).toBeNull();
  });
  test("another host, another port, several Host headers or garbage are refused", () => {
    expect(checkHostHeader(["blocked.test"], target)).toBe('the Host header "blocked.test" does not match the request target allowed.test');
    expect(checkHostHeader(["allowed.test:8080"], target)).toMatch(/does not match/);
    expect(checkHostHeader(["allowed.test", "blocked.test"], target)).toMatch(/more than one Host header/);
    expect(checkHostHeader(["allowed.test@blocked.test"], target)).toMatch(/not a valid host/);
  });
});

describe("layered filters (a request's filter inside the operator's bound)", () => {
  const operator = rules(["^allowed\\.test$", "^blocked\\.test$"], ["^blocked\\.test$"]);
  test("a request whitelist of .* does not widen the operator's whitelist", () => {
    expect(evaluateLayers("allowed.test", [rules([".*"]), operator])).toEqual({ allowed: true, rule: "^allowed\\.test$" });
    expect(evaluateLayers("other.test", [rules([".*"]), operator])).toEqual({
      allowed: false,
      reason: expect.stringContaining("other.test matches no whitelist rule (/^allowed\\.test$/, /^blocked\\.test$/)"),
    });
    expect(evaluateLayers("172.17.0.1", [rules([".*"]), operator]).allowed).toBe(false);
  });
  test("an empty request whitelist keeps the operator's; the operator's blacklist applies whatever the request says", () => {
    expect(evaluateLayers("other.test", [rules([]), operator]).allowed).toBe(false);
    expect(evaluateLayers("blocked.test", [rules([".*"], []), operator])).toEqual({
      allowed: false,
      reason: "blocked.test matches blacklist rule /^blocked\\.test$/",
    });
  });
  test("a request narrows: its blacklist and its whitelist apply inside the bound", () => {
    expect(evaluateLayers("allowed.test", [rules([], ["allowed\\..*"]), operator])).toEqual({
      allowed: false,
      reason: "allowed.test matches blacklist rule /allowed\\..*/",
    });
    expect(evaluateLayers("allowed.test", [rules(["nothing\\.test"]), operator]).allowed).toBe(false);
  });
});
