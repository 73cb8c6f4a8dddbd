import { describe, expect, test } from "vitest";
import { chooseAddress, classifyAddress, inCidr, parseCidr, parseIPv4, parseIPv6 } from "./proxy-script.js";

describe("address classifier", () => {
  // [address, class or null for "may be dialled"]
  const table: [string, string | null][] = [
    // public
    ["1.1.1.1", null],
    ["8.8.8.8", null],
    ["9.255.255.255", null],
    ["11.0.0.0", null],
    ["172.15.255.255", null],
    ["172.32.0.0", null],
    ["192.167.255.255", null],
    ["192.169.0.0", null],
    ["100.63.255.255", null],
    ["100.128.0.0", null],
    ["169.253.255.255", null],
    ["223.255.255.255", null],
    // private (RFC 1918), with edges
    ["10.0.0.0", "private"],
    ["10.255.255.255", "private"],
    ["172.16.0.0", "private"],
    ["172.31.255.255", "private"],
    ["192.168.0.1", "private"],
    ["192.168.255.255", "private"],
    // loopback
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["127.0.0.0", "loopback"],
    // link-local and metadata
    ["169.254.0.1", "link-local"],
    ["169.254.255.255", "link-local"],
    ["169.254.169.254", "metadata"],
    ["169.254.169.253", "link-local"],
    ["100.100.100.200", "metadata"],
    ["168.63.129.16", "metadata"],
    // CGNAT 100.64/10
    ["100.64.0.0", "cgnat"],
    ["100.127.255.255", "cgnat"],
    // unspecified, broadcast, multicast, reserved
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["255.255.255.255", "broadcast"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.255", "multicast"],
    ["240.0.0.1", "reserved"],
    ["255.255.255.254", "reserved"],
    ["192.0.0.8", "reserved"],
    ["192.88.99.1", "reserved"],
    // not globally reachable: documentation and benchmarking (this machine's own address is in 192.0.2.0/24)
    ["192.0.2.2", "documentation"],
    ["198.51.100.7", "documentation"],
    ["203.0.113.9", "documentation"],
    ["198.18.0.1", "benchmarking"],
    ["198.19.255.255", "benchmarking"],
    ["198.20.0.0", null],
    // IPv6
    ["2606:4700:4700::1111", null],
    ["2001:4860:4860::8888", null],
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["0:0:0:0:0:0:0:1", "loopback"],
    ["fe80::1", "link-local"],
    ["febf:ffff::1", "link-local"],
    ["fec0::1", "site-local"],
    ["fc00::1", "unique-local"],
    ["fd12:3456::1", "unique-local"],
    ["fd00:ec2::254", "metadata"],
    ["fd00:ec2::253", "unique-local"],
    ["ff02::1", "multicast"],
    ["ff05::2", "multicast"],
    // IPv4-mapped and embedded forms
    ["::ffff:127.0.0.1", "ipv4-mapped"],
    ["::ffff:7f00:1", "ipv4-mapped"],
    ["::ffff:8.8.8.8", "ipv4-mapped"],
    ["::ffff:169.254.169.254", "ipv4-mapped"],
    ["0:0:0:0:0:ffff:a00:1", "ipv4-mapped"],
    ["::127.0.0.1", "reserved"],
    ["::8.8.8.8", "reserved"],
    ["64:ff9b::7f00:1", "nat64 of a loopback address"],
    ["64:ff9b::a00:1", "nat64 of a private address"],
    ["64:ff9b::169.254.169.254", "nat64 of a metadata address"],
    ["64:ff9b::808:808", null],
    ["64:ff9b:1::1", "private"],
    ["2002:7f00:1::1", "6to4 of a loopback address"],
    ["2002:c0a8:101::1", "6to4 of a private address"],
    ["2002:808:808::1", null],
    ["2001::1", "teredo"],
    ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "teredo"],
    ["2001:db8::1", "documentation"],
    ["2001:2::1", "reserved"],
    ["100::1", "reserved"],
    ["4000::1", "reserved"],
    ["1000::1", "reserved"],
    ["3fff:ffff::1", null],
    // garbage is never dialled
    ["", "invalid"],
    ["localhost", "invalid"],
    ["1.2.3", "invalid"],
    ["01.2.3.4", "invalid"],
    ["256.1.1.1", "invalid"],
    ["fe80::1%eth0", "invalid"],
    ["1::2::3", "invalid"],
    ["1:2:3:4:5:6:7:8:9", "invalid"],
  ];
  test.each(table)("%s → %s", (address, expected) => {
    expect(classifyAddress(address)).toBe(expected);
  });

  test("parsers agree on equivalent spellings", () => {
    expect(parseIPv6("::ffff:127.0.0.1")).toEqual(parseIPv6("::ffff:7f00:1"));
    expect(parseIPv6("0:0:0:0:0:0:0:1")).toEqual(parseIPv6("::1"));
    expect(parseIPv6("1:2:3:4:5:6:7:8")).toHaveLength(16);
    expect(parseIPv6("1:2:3:4:5:6:1.2.3.4")).toHaveLength(16);
    expect(parseIPv6("1.2.3.4::")).toBeNull();
    expect(parseIPv4("1.2.3.4")).toEqual([1, 2, 3, 4]);
  });

  test("CIDR membership", () => {
    expect(parseCidr("10.0.0.0/33")).toBeNull();
    expect(inCidr("10.1.2.3", "10.0.0.0/8")).toBe(true);
    expect(inCidr("11.1.2.3", "10.0.0.0/8")).toBe(false);
    expect(inCidr("172.20.0.5", "172.20.0.0/30")).toBe(false);
    expect(inCidr("172.20.0.3", "172.20.0.0/30")).toBe(true);
    expect(inCidr("fd00::1", "fc00::/7")).toBe(true);
    expect(inCidr("10.0.0.1", "::/0")).toBe(false); // families never match
    expect(inCidr("1.2.3.4", "0.0.0.0/0")).toBe(true);
  });
});

describe("choosing the address to dial", () => {
  const base = { allowCidrs: [] as string[], selfAddresses: ["172.30.0.2"], sandboxCidrs: ["10.213.0.0/16"] };
  test("a public address is dialled; IPv4 first", () => {
    expect(chooseAddress("a.test", ["2606:4700::1", "1.1.1.1"], base)).toEqual({ ok: true, address: "1.1.1.1" });
  });
  test("a name resolving to loopback is refused, naming the class", () => {
    const choice = chooseAddress("evil.test", ["127.0.0.1"], base);
    expect(choice).toEqual({ ok: false, reason: expect.stringContaining("127.0.0.1, a loopback address") });
  });
  test("non-public answers are skipped when a public one exists (the vetted address is the one dialled)", () => {
    expect(chooseAddress("mixed.test", ["10.0.0.1", "8.8.8.8"], base)).toEqual({ ok: true, address: "8.8.8.8" });
  });
  test("a private address is dialled only inside an operator range (no host rule opens one)", () => {
    expect(chooseAddress("db.internal", ["10.0.0.5"], base)).toEqual({
      ok: false,
      reason: expect.stringContaining("10.0.0.5, a private address (allowed only in the operator's allowAddresses ranges)"),
    });
    expect(chooseAddress("db.internal", ["10.0.0.5"], { ...base, allowCidrs: ["10.0.0.0/24"] })).toEqual({ ok: true, address: "10.0.0.5" });
    expect(chooseAddress("db.internal", ["10.0.1.5"], { ...base, allowCidrs: ["10.0.0.0/24"] }).ok).toBe(false);
  });
  test("the proxy's own address and the sandboxes' ranges are refused even inside an operator range", () => {
    const wide = { ...base, allowCidrs: ["0.0.0.0/0"] };
    expect(chooseAddress("me.test", ["172.30.0.2"], wide)).toEqual({ ok: false, reason: expect.stringContaining("the proxy's own address") });
    expect(chooseAddress("peer.test", ["10.213.4.3"], wide)).toEqual({
      ok: false,
      reason: expect.stringContaining("10.213.4.3, an address of isol8's sandbox networks"),
    });
    expect(chooseAddress("lan.test", ["10.214.0.3"], wide)).toEqual({ ok: true, address: "10.214.0.3" });
  });
  test("metadata and mapped forms are refused", () => {
    expect(chooseAddress("m.test", ["169.254.169.254"], base)).toEqual({ ok: false, reason: expect.stringContaining("metadata") });
    expect(chooseAddress("m.test", ["fd00:ec2::254"], base)).toEqual({ ok: false, reason: expect.stringContaining("metadata") });
    expect(chooseAddress("m.test", ["::ffff:1.1.1.1"], base)).toEqual({ ok: false, reason: expect.stringContaining("ipv4-mapped") });
  });
});
