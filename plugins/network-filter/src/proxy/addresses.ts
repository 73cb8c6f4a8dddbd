/**
 * Addresses as the proxy judges them: IPv4/IPv6 parsing, the classes of address it never dials
 * (private, loopback, metadata...), CIDR ranges, and the choice of the address to dial.
 *
 * Part of the proxy program, shipped as source text (see ../script.ts): a function here uses
 * only its parameters, JavaScript globals and the other functions of this file.
 */

/** Dotted-quad IPv4 in canonical decimal form, or null. (Shorthand forms are canonicalised by normalizeHost first.) */
export function parseIPv4(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const bytes: number[] = [];
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const value = Number(part);
    if (value > 255) return null;
    bytes.push(value);
  }
  return bytes;
}

/** An IPv6 address (no brackets, no zone) as 16 bytes, or null. Accepts `::` and an embedded dotted IPv4 tail. */
export function parseIPv6(text: string): number[] | null {
  if (!/^[0-9A-Fa-f:.]+$/.test(text) || text.length > 45) return null;
  const gap = text.indexOf("::");
  if (gap !== text.lastIndexOf("::")) return null;
  const split = (s: string) => (s === "" ? [] : s.split(":"));
  const head = gap >= 0 ? split(text.slice(0, gap)) : split(text);
  const tail = gap >= 0 ? split(text.slice(gap + 2)) : [];
  const words = (groups: string[], last: boolean): number[] | null => {
    const out: number[] = [];
    for (let i = 0; i < groups.length; i++) {
      const group = groups[i]!;
      if (group.includes(".")) {
        if (!last || i !== groups.length - 1) return null;
        const v4 = parseIPv4(group);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(group)) return null;
        out.push(parseInt(group, 16));
      }
    }
    return out;
  };
  const first = words(head, gap < 0);
  const second = words(tail, true);
  if (!first || !second) return null;
  let all: number[];
  if (gap >= 0) {
    if (first.length + second.length > 7) return null;
    all = [...first, ...new Array<number>(8 - first.length - second.length).fill(0), ...second];
  } else {
    if (first.length !== 8) return null;
    all = first;
  }
  const bytes: number[] = [];
  for (const word of all) bytes.push(word >> 8, word & 0xff);
  return bytes;
}

/**
 * Why the proxy must not connect to an IPv4 address (4 bytes), or null for a globally reachable
 * one. The rule: refuse every address that is not globally reachable (IANA special-purpose
 * registry), plus the cloud metadata services.
 */
export function classifyIPv4(b: number[]): string | null {
  const [a, c, d, e] = b as [number, number, number, number];
  if (
    (a === 169 && c === 254 && d === 169 && e === 254) ||
    (a === 100 && c === 100 && d === 100 && e === 200) ||
    (a === 168 && c === 63 && d === 129 && e === 16)
  ) {
    return "metadata"; // AWS/GCP/Azure/OpenStack, Alibaba, Azure wireserver
  }
  if (a === 255 && c === 255 && d === 255 && e === 255) return "broadcast";
  if (a === 0) return "unspecified"; // 0.0.0.0/8, "this network"
  if (a === 10 || (a === 172 && c >= 16 && c <= 31) || (a === 192 && c === 168)) return "private";
  if (a === 100 && c >= 64 && c <= 127) return "cgnat";
  if (a === 127) return "loopback";
  if (a === 169 && c === 254) return "link-local";
  if (a === 192 && c === 0 && d === 0) return "reserved"; // IETF protocol assignments 192.0.0.0/24
  if ((a === 192 && c === 0 && d === 2) || (a === 198 && c === 51 && d === 100) || (a === 203 && c === 0 && d === 113)) return "documentation";
  if (a === 198 && (c === 18 || c === 19)) return "benchmarking";
  if (a === 192 && c === 88 && d === 99) return "reserved"; // deprecated 6to4 relay anycast
  if (a >= 224 && a <= 239) return "multicast";
  if (a >= 240) return "reserved";
  return null;
}

/** The same for an IPv6 address (16 bytes). Embedded IPv4 (NAT64, 6to4) is judged by the IPv4 it embeds. */
export function classifyIPv6(b: number[]): string | null {
  const w = (i: number) => (b[2 * i]! << 8) | b[2 * i + 1]!;
  const zero = (from: number, to: number) => {
    for (let i = from; i < to; i++) if (b[i] !== 0) return false;
    return true;
  };
  if (zero(0, 16)) return "unspecified";
  if (zero(0, 15) && b[15] === 1) return "loopback";
  if (zero(0, 10) && w(5) === 0xffff) return "ipv4-mapped";
  if (zero(0, 12)) return "reserved"; // IPv4-compatible (deprecated)
  if (w(0) === 0xfd00 && w(1) === 0x0ec2 && zero(4, 14) && w(7) === 0x0254) return "metadata"; // AWS IMDS over IPv6
  if (w(0) === 0x64 && w(1) === 0xff9b && zero(4, 12)) {
    const inner = classifyIPv4(b.slice(12));
    return inner ? `nat64 of a ${inner} address` : null;
  }
  if (w(0) === 0x64 && w(1) === 0xff9b && w(2) === 1) return "private"; // local-use NAT64 64:ff9b:1::/48
  if (w(0) === 0x0100 && zero(2, 8)) return "reserved"; // discard-only 100::/64
  if (w(0) === 0x2001 && w(1) === 0) return "teredo";
  if (w(0) === 0x2001 && w(1) === 0x0db8) return "documentation";
  if (w(0) === 0x2001 && w(1) < 0x0200) return "reserved"; // IETF protocol assignments 2001::/23
  if (w(0) === 0x2002) {
    const inner = classifyIPv4(b.slice(2, 6));
    return inner ? `6to4 of a ${inner} address` : null;
  }
  if ((b[0]! & 0xfe) === 0xfc) return "unique-local";
  if ((w(0) & 0xffc0) === 0xfe80) return "link-local";
  if ((w(0) & 0xffc0) === 0xfec0) return "site-local";
  if (b[0] === 0xff) return "multicast";
  if ((b[0]! & 0xe0) !== 0x20) return "reserved"; // outside 2000::/3, the global unicast space
  return null;
}

/** Why the proxy must not connect to this address (IPv4 or IPv6 text), or null when it may. */
export function classifyAddress(address: string): string | null {
  const v4 = parseIPv4(address);
  if (v4) return classifyIPv4(v4);
  const v6 = parseIPv6(address);
  if (v6) return classifyIPv6(v6);
  return "invalid";
}

/** "10.0.0.0/8" or "fd00::/8" → bytes and prefix length; null when malformed. */
export function parseCidr(text: string): { bytes: number[]; prefix: number } | null {
  const slash = text.indexOf("/");
  const addr = slash < 0 ? text : text.slice(0, slash);
  const bytes = parseIPv4(addr) ?? parseIPv6(addr);
  if (!bytes) return null;
  const max = bytes.length * 8;
  const prefixText = slash < 0 ? String(max) : text.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(prefixText)) return null;
  const prefix = Number(prefixText);
  if (prefix > max) return null;
  return { bytes, prefix };
}

/** Whether an address (text) lies in a CIDR (text). Families never match each other. */
export function inCidr(address: string, cidr: string): boolean {
  const bytes = parseIPv4(address) ?? parseIPv6(address);
  const range = parseCidr(cidr);
  if (!bytes || !range || bytes.length !== range.bytes.length) return false;
  let bits = range.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((bytes[i]! & mask) !== (range.bytes[i]! & mask)) return false;
  }
  return true;
}

/**
 * Picks the address to dial among those a name resolved to: never one of the proxy's own
 * addresses nor one in the sandboxes' ranges (other sandboxes); a non-public one only when an
 * operator range (allowAddresses) covers it. No host rule opens a non-public address: a rule
 * such as `.*` also matches IP literals and names that resolve to private addresses.
 * IPv4 first (the egress network has no IPv6).
 */
export function chooseAddress(
  host: string,
  addresses: string[],
  policy: { allowCidrs: string[]; selfAddresses: string[]; sandboxCidrs: string[] },
): { ok: true; address: string } | { ok: false; reason: string } {
  const ordered = [...addresses].sort((x, y) => Number(x.includes(":")) - Number(y.includes(":")));
  let firstRefusal: string | null = null;
  for (const address of ordered) {
    let refusal: string | null = null;
    if (policy.selfAddresses.includes(address)) refusal = `${host} resolves to ${address}, the proxy's own address`;
    else if (policy.sandboxCidrs.some((cidr) => inCidr(address, cidr))) refusal = `${host} resolves to ${address}, an address of isol8's sandbox networks`;
    else {
      const kind = classifyAddress(address);
      if (kind && !policy.allowCidrs.some((cidr) => inCidr(address, cidr))) {
        refusal = `${host} resolves to ${address}, a ${kind} address (allowed only in the operator's allowAddresses ranges)`;
      }
    }
    if (!refusal) return { ok: true, address };
    firstRefusal ??= refusal;
  }
  return { ok: false, reason: firstRefusal ?? `${host} has no address` };
}
