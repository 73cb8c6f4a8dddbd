import { describe, expect, test } from "vitest";
import { hostAllowed, nonPublicKind } from "./code-url.js";

// Pure checks of request.codeUrl's policy (the fetches themselves: test/integration/code-url.test.ts).

describe("nonPublicKind: addresses code is never fetched from without allowPrivateAddresses", () => {
  test.each([
    ["127.0.0.1", "ipv4", "loopback"],
    ["10.1.2.3", "ipv4", "private"],
    ["172.31.255.255", "ipv4", "private"],
    ["192.168.0.10", "ipv4", "private"],
    ["169.254.169.254", "ipv4", "link-local"],
    ["100.64.0.1", "ipv4", "carrier-grade NAT"],
    ["0.0.0.0", "ipv4", "unspecified"],
    ["224.0.0.1", "ipv4", "multicast"],
    ["::1", "ipv6", "loopback"],
    ["::", "ipv6", "unspecified"],
    ["::ffff:127.0.0.1", "ipv6", "IPv4-mapped"],
    ["fe80::1", "ipv6", "link-local"],
    ["fd00::1", "ipv6", "unique-local"],
    ["2001:db8::1", "ipv6", "documentation"],
    ["64:ff9b::a00:1", "ipv6", "NAT64"],
    ["ff02::1", "ipv6", "multicast"],
    ["200::1", "ipv6", "reserved"],
  ] as const)("%s is %s", (address, family, kind) => {
    expect(nonPublicKind(address, family)).toBe(kind);
  });

  test.each([
    ["93.184.215.14", "ipv4"],
    ["172.32.0.1", "ipv4"],
    ["2606:4700::1111", "ipv6"],
  ] as const)("%s is public", (address, family) => {
    expect(nonPublicKind(address, family)).toBeUndefined();
  });
});

describe("hostAllowed: the operator's allowHosts", () => {
  test("an entry is a host exactly (case-insensitive), not a suffix or prefix", () => {
    expect(hostAllowed("code.example.com", ["Code.Example.com"])).toBe(true);
    expect(hostAllowed("evilcode.example.com", ["code.example.com"])).toBe(false);
    expect(hostAllowed("code.example.com.evil.net", ["code.example.com"])).toBe(false);
  });

  test("*.example.com allows the names under example.com, not example.com itself nor a look-alike", () => {
    expect(hostAllowed("a.example.com", ["*.example.com"])).toBe(true);
    expect(hostAllowed("a.b.example.com", ["*.example.com"])).toBe(true);
    expect(hostAllowed("example.com", ["*.example.com"])).toBe(false);
    expect(hostAllowed("badexample.com", ["*.example.com"])).toBe(false);
  });

  test("an IPv6 entry may carry brackets", () => {
    expect(hostAllowed("::1", ["[::1]"])).toBe(true);
  });

  test("an empty list allows nothing", () => {
    expect(hostAllowed("127.0.0.1", [])).toBe(false);
  });
});
