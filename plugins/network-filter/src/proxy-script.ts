/**
 * The egress proxy of network mode "filtered", and the pure logic it applies.
 *
 * Every function in this module is shipped into the proxy container as source text
 * (`Function.prototype.toString`, see script.ts), so each one may use only its parameters,
 * JavaScript globals (URL, Buffer, JSON, Date, ...) and the other functions of this module.
 * No imports (type-only ones are erased), no module-level constants, no classes or enums.
 * `script.test.ts` checks that the shipped source evaluates on its own.
 *
 * The host side imports the same functions (rule validation, unit tests), so the engine and
 * the proxy can never disagree about what a rule or an address class means.
 */
import type * as Http from "node:http";
import type * as Net from "node:net";
import type * as Dns from "node:dns";
import type * as Os from "node:os";
import type * as Crypto from "node:crypto";

// ------------------------------------------------------------------------- addresses

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

// ------------------------------------------------------------------------- hosts and targets

/**
 * The canonical form of a host name or IP literal, as rules see it and the proxy dials it:
 * lower case, IDNA (punycode), IPv4 shorthand (0x7f.1, 2130706433) as dotted decimal, IPv6
 * compressed without brackets, one trailing dot removed. Null when it is not a valid host.
 */
export function normalizeHost(raw: string): string | null {
  if (raw.length === 0 || raw.length > 255) return null;
  if (/[\s@/\\?#%]/.test(raw)) return null;
  let text = raw;
  if (text.startsWith("[")) {
    if (!text.endsWith("]")) return null;
  } else if (text.includes(":")) {
    text = `[${text}]`;
  }
  let url: URL;
  try {
    url = new URL(`http://${text}/`);
  } catch {
    return null;
  }
  if (url.username || url.password || url.port || url.pathname !== "/" || url.search || url.hash) return null;
  let host = url.hostname;
  if (host.startsWith("[")) return host.slice(1, -1);
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (host === "" || host.includes("..") || host.startsWith(".") || host.endsWith(".") || host.length > 253) return null;
  return host;
}

/** "host:port" / "[v6]:port" / "host" (with defaultPort) → normalized host and port; null when invalid. */
export function parseAuthority(text: string, defaultPort: number | null): { host: string; port: number } | null {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^:\s/?#@[\]\\]+)(?::([0-9]{1,5}))?$/.exec(text);
  if (!match) return null;
  const portText = match[2];
  if (portText === undefined && defaultPort === null) return null;
  const port = portText === undefined ? defaultPort! : Number(portText);
  if (!(port >= 1 && port <= 65535)) return null;
  const host = normalizeHost(match[1]!);
  if (!host) return null;
  return { host, port };
}

export type RequestTarget =
  | { ok: true; kind: "connect" | "http"; host: string; port: number; path: string | null }
  | { ok: false; status: number; reason: string; host: string; path: string | null };

/**
 * The request target is the only source of the destination (RFC 9112 §3.2): CONNECT takes an
 * authority (host:port), every other method an absolute http:// URL. Origin-form (a path),
 * other schemes, userinfo and https:// URLs (which would ask the proxy to speak TLS) are refused.
 * The path is forwarded as sent (no dot-segment rewriting).
 */
export function parseRequestTarget(method: string, target: string): RequestTarget {
  if (method === "CONNECT") {
    const authority = parseAuthority(target, null);
    if (!authority) return { ok: false, status: 400, reason: `invalid CONNECT target "${target.slice(0, 200)}": expected host:port`, host: "", path: null };
    return { ok: true, kind: "connect", host: authority.host, port: authority.port, path: null };
  }
  if (target.startsWith("/") || target === "*") {
    return {
      ok: false,
      status: 400,
      reason: "this is a forward proxy: send the absolute URL (http://host/path) as the request target",
      host: "",
      path: target.slice(0, 200),
    };
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(target)?.[1]?.toLowerCase();
  if (scheme !== "http") {
    const what = scheme === "https" ? "https:// URLs go through CONNECT (set HTTPS_PROXY)" : `scheme "${scheme ?? "?"}" is not supported: HTTP and HTTPS only`;
    return { ok: false, status: 400, reason: what, host: "", path: null };
  }
  if (!/^http:\/\//i.test(target)) return { ok: false, status: 400, reason: "invalid URL: expected http://host/path", host: "", path: null };
  const rest = target.slice(7);
  const cut = rest.search(/[/?#]/);
  const authorityText = cut < 0 ? rest : rest.slice(0, cut);
  let path = cut < 0 ? "/" : rest.slice(cut);
  const hash = path.indexOf("#");
  if (hash >= 0) path = path.slice(0, hash);
  if (path.startsWith("?")) path = `/${path}`;
  if (path === "") path = "/";
  if (authorityText.includes("@")) return { ok: false, status: 400, reason: "URLs with credentials (user@host) are refused", host: "", path };
  const authority = parseAuthority(authorityText, 80);
  if (!authority) return { ok: false, status: 400, reason: `invalid host "${authorityText.slice(0, 200)}"`, host: "", path };
  return { ok: true, kind: "http", host: authority.host, port: authority.port, path };
}

/** The Host header value for a target: brackets for IPv6, the port when it is not 80. */
export function hostHeaderFor(host: string, port: number): string {
  const name = host.includes(":") ? `[${host}]` : host;
  return port === 80 ? name : `${name}:${port}`;
}

/**
 * The Host header decision: the request target decides where a request goes, so a Host header
 * that names anything else is refused (a mismatch is either a confused client or an attempt to
 * reach another virtual host behind an allowed address). Several Host headers are refused; none
 * (HTTP/1.0) is fine. The header forwarded upstream is always rebuilt from the target.
 * Returns null when acceptable, else the reason.
 */
export function checkHostHeader(values: string[], target: { host: string; port: number }): string | null {
  if (values.length === 0) return null;
  if (values.length > 1) return "the request has more than one Host header";
  const parsed = parseAuthority(values[0]!.trim(), 80);
  if (!parsed) return `the Host header "${values[0]!.slice(0, 200)}" is not a valid host`;
  if (parsed.host !== target.host || parsed.port !== target.port) {
    return `the Host header "${values[0]!.slice(0, 200)}" does not match the request target ${hostHeaderFor(target.host, target.port)}`;
  }
  return null;
}

// ------------------------------------------------------------------------- rules

export interface CompiledRule {
  source: string;
  re: RegExp;
}

/** Rules match the whole normalized host (anchored), case-insensitively. Throws, naming the pattern, on a bad one. */
export function compileRules(patterns: string[], list: string): CompiledRule[] {
  return patterns.map((source, index) => {
    try {
      return { source, re: new RegExp(`^(?:${source})$`, "i") };
    } catch (error) {
      throw new Error(`networkFilter.${list}[${index}]: invalid regular expression ${JSON.stringify(source)}: ${(error as Error).message}`, { cause: error });
    }
  });
}

export type RuleDecision = { allowed: true; rule: string | null } | { allowed: false; reason: string };

/**
 * One filter: blacklist first (a match blocks, whatever the whitelist says); then, when the
 * whitelist is not empty, the host must match one of its rules. `rule` is the whitelist rule that
 * matched (null under an empty whitelist). A match never opens a non-public address: only the
 * operator's `allowAddresses` does (chooseAddress).
 */
export function evaluateRules(host: string, rules: { whitelist: CompiledRule[]; blacklist: CompiledRule[] }): RuleDecision {
  for (const rule of rules.blacklist) {
    if (rule.re.test(host)) return { allowed: false, reason: `${host} matches blacklist rule /${rule.source}/` };
  }
  for (const rule of rules.whitelist) {
    if (rule.re.test(host)) return { allowed: true, rule: rule.source };
  }
  if (rules.whitelist.length > 0) {
    return { allowed: false, reason: `${host} matches no whitelist rule (${rules.whitelist.map((r) => `/${r.source}/`).join(", ")})` };
  }
  return { allowed: true, rule: null };
}

/**
 * Several filters that must all allow a host: the engine's own and its bounds (the operator's
 * filter a request narrowed). Every blacklist is checked before any whitelist, so a blocked host
 * is reported by the rule that blocks it. The decision names the innermost whitelist rule that matched.
 */
export function evaluateLayers(host: string, layers: { whitelist: CompiledRule[]; blacklist: CompiledRule[] }[]): RuleDecision {
  for (const layer of layers) {
    const blocked = evaluateRules(host, { whitelist: [], blacklist: layer.blacklist });
    if (!blocked.allowed) return blocked;
  }
  let rule: string | null = null;
  for (let i = layers.length - 1; i >= 0; i--) {
    const decision = evaluateRules(host, { whitelist: layers[i]!.whitelist, blacklist: [] });
    if (!decision.allowed) return decision;
    rule = rule ?? decision.rule;
  }
  return { allowed: true, rule };
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

// ------------------------------------------------------------------------- TLS

/**
 * Looks at the first bytes of a CONNECT tunnel: a TLS ClientHello (possibly spread over several
 * records) and its server_name. "more" until enough bytes arrived.
 */
export function parseClientHello(data: Uint8Array): { status: "more" } | { status: "not-tls"; detail: string } | { status: "tls"; sni: string | null } {
  const handshake: number[] = [];
  let offset = 0;
  let need = -1;
  while (need < 0 || handshake.length < need) {
    if (data.length < offset + 5) return { status: "more" };
    if (data[offset] !== 0x16)
      return { status: "not-tls", detail: offset === 0 ? "the tunnel did not start with a TLS handshake" : "a non-handshake record inside the ClientHello" };
    if (data[offset + 1] !== 3) return { status: "not-tls", detail: "unknown TLS record version" };
    const length = (data[offset + 3]! << 8) | data[offset + 4]!;
    if (length === 0 || length > 16384 + 2048) return { status: "not-tls", detail: "invalid TLS record length" };
    if (data.length < offset + 5 + length) return { status: "more" };
    for (let i = 0; i < length; i++) handshake.push(data[offset + 5 + i]!);
    offset += 5 + length;
    if (need < 0 && handshake.length >= 4) {
      if (handshake[0] !== 1) return { status: "not-tls", detail: "the first TLS handshake message is not a ClientHello" };
      need = 4 + ((handshake[1]! << 16) | (handshake[2]! << 8) | handshake[3]!);
      if (need > 65536) return { status: "not-tls", detail: "ClientHello too large" };
    }
  }
  const h = handshake;
  let p = 4 + 2 + 32; // header, legacy_version, random
  const bad = { status: "not-tls" as const, detail: "malformed ClientHello" };
  if (p + 1 > need) return bad;
  p += 1 + h[p]!; // session id
  if (p + 2 > need) return bad;
  p += 2 + ((h[p]! << 8) | h[p + 1]!); // cipher suites
  if (p + 1 > need) return bad;
  p += 1 + h[p]!; // compression methods
  if (p === need) return { status: "tls", sni: null }; // no extensions
  if (p + 2 > need) return bad;
  const end = p + 2 + ((h[p]! << 8) | h[p + 1]!);
  if (end > need) return bad;
  p += 2;
  while (p + 4 <= end) {
    const type = (h[p]! << 8) | h[p + 1]!;
    const len = (h[p + 2]! << 8) | h[p + 3]!;
    p += 4;
    if (p + len > end) return bad;
    if (type === 0) {
      // server_name: list length, then (type 0 = host_name, length, name)
      let q = p + 2;
      const listEnd = Math.min(p + 2 + ((h[p]! << 8) | h[p + 1]!), p + len);
      while (q + 3 <= listEnd) {
        const nameType = h[q]!;
        const nameLen = (h[q + 1]! << 8) | h[q + 2]!;
        q += 3;
        if (q + nameLen > listEnd) return bad;
        if (nameType === 0) return { status: "tls", sni: String.fromCharCode(...h.slice(q, q + nameLen)) };
        q += nameLen;
      }
      return { status: "tls", sni: null };
    }
    p += len;
  }
  return { status: "tls", sni: null };
}

/**
 * The first bytes of a CONNECT tunnel decide whether it may go on: a TLS ClientHello whose
 * server name (when sent) is the CONNECT host, or a plain HTTP/1.x request whose Host header
 * (when sent) names the CONNECT target (Node's fetch tunnels http:// URLs through CONNECT too).
 * Anything else (SSH, SMTP, raw bytes) is cut. Only the first request of a tunnel is seen.
 */
export function inspectTunnelStart(
  data: Uint8Array,
  target: { host: string; port: number },
): { status: "more" } | { status: "block"; reason: string } | { status: "ok"; protocol: "tls" | "http" } {
  if (data.length === 0) return { status: "more" };
  if (data[0] === 0x16) {
    const hello = parseClientHello(data);
    if (hello.status === "more") return data.length > 70_000 ? { status: "block", reason: "ClientHello too large" } : hello;
    if (hello.status === "not-tls") return { status: "block", reason: `${hello.detail}: CONNECT tunnels carry HTTP and HTTPS only` };
    if (hello.sni !== null && normalizeHost(hello.sni) !== target.host) {
      return { status: "block", reason: `TLS server name "${hello.sni.slice(0, 200)}" does not match the CONNECT host ${target.host}` };
    }
    return { status: "ok", protocol: "tls" };
  }
  let text = "";
  const limit = Math.min(data.length, 32 * 1024);
  for (let i = 0; i < limit; i++) text += String.fromCharCode(data[i]!);
  const firstLine = /^([A-Z]{1,20}) (\S{1,8192}) HTTP\/1\.[01]\r\n/;
  const prefix = /^[A-Z]{0,20}( \S{0,8192}( (H(T(T(P(\/(1(\.([01](\r)?)?)?)?)?)?)?)?)?)?)?$/;
  if (!firstLine.test(text)) {
    if (text.length < 8300 && prefix.test(text)) return { status: "more" };
    return { status: "block", reason: "the tunnel did not start with a TLS handshake or an HTTP request: CONNECT tunnels carry HTTP and HTTPS only" };
  }
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return data.length >= 32 * 1024 ? { status: "block", reason: "request head too large" } : { status: "more" };
  const hosts = text
    .slice(0, end)
    .split("\r\n")
    .slice(1)
    .filter((line) => /^host:/i.test(line))
    .map((line) => line.slice(5).trim());
  const hostProblem = checkHostHeader(hosts, target);
  return hostProblem ? { status: "block", reason: hostProblem } : { status: "ok", protocol: "http" };
}

// ------------------------------------------------------------------------- the proxy

export interface ProxyConfig {
  whitelist: string[];
  blacklist: string[];
  /** Outer filters that must allow a host as well (the operator's, when a request narrowed it). */
  bounds: { whitelist: string[]; blacklist: string[] }[];
  /** Destination ports a request or tunnel may use. */
  ports: number[];
  proxyPort: number;
  logPort: number;
  /** The proxy serves connections that arrive on an address inside one of these (the sandboxes' networks). */
  proxySubnets: string[];
  /** Ranges of the sandboxes' networks: never dialled (the proxy must not be a way from one sandbox to another). */
  sandboxSubnets: string[];
  /** The log endpoint listens on its address inside one of these (the egress network). */
  logSubnets: string[];
  /** Bearer token of the log endpoint. */
  token: string;
  ringSize: number;
  maxConnectionsPerClient: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** CONNECT tunnels must start with TLS (server name = CONNECT host) or HTTP/1.x (Host = CONNECT target): inspectTunnelStart. */
  inspectTunnels: boolean;
  /** Operator ranges the proxy may dial although they are not public. */
  allowAddresses: string[];
  /** Static resolver entries, consulted before DNS. */
  hosts: Record<string, string[]>;
  /** How long a DNS answer is reused (0: never). */
  dnsCacheMs: number;
}

export interface ProxyModules {
  http: typeof Http;
  net: typeof Net;
  dns: typeof Dns;
  os: typeof Os;
  crypto: typeof Crypto;
}

export interface ProxyLogRecord {
  /** ms since the epoch at which the request arrived. */
  time: number;
  client: string;
  method: string;
  host: string;
  path: string | null;
  action: "ALLOW" | "BLOCK";
  reason?: string;
  status?: number;
  durationMs: number;
  open: boolean;
}

export interface RunningProxy {
  proxyAddress: string;
  proxyPort: number;
  logAddress: string;
  logPort: number;
  close(): Promise<void>;
}

/**
 * Starts the proxy (port config.proxyPort on the internal address) and its log endpoint
 * (config.logPort on the egress address; GET /health and GET /logs?client=&since=&until=&settle=,
 * bearer token). Returns once both listen.
 */
export function runProxy(config: ProxyConfig, mods: ProxyModules): Promise<RunningProxy> {
  const { http, net, dns, os, crypto } = mods;
  const layers = [
    { whitelist: compileRules(config.whitelist, "whitelist"), blacklist: compileRules(config.blacklist, "blacklist") },
    ...config.bounds.map((bound, i) => ({
      whitelist: compileRules(bound.whitelist, `bounds[${i}].whitelist`),
      blacklist: compileRules(bound.blacklist, `bounds[${i}].blacklist`),
    })),
  ];

  const addressIn = (subnets: string[]): string | null => {
    for (const list of Object.values(os.networkInterfaces())) {
      for (const info of list ?? []) {
        if (subnets.some((cidr) => inCidr(info.address, cidr))) return info.address;
      }
    }
    return null;
  };
  // Sandbox networks are connected to the proxy while it runs (one per sandbox), so it listens on
  // every address and serves only connections that arrived on an address in proxySubnets.
  const proxyAddress = "0.0.0.0";
  const logAddress = addressIn(config.logSubnets);
  if (!logAddress) {
    return Promise.reject(new Error(`no interface in ${config.logSubnets.join(",")}: ${JSON.stringify(os.networkInterfaces())}`));
  }
  const selfAddresses = [logAddress];

  // A bounded ring of request records: memory stays flat whatever the sandboxes do.
  const ring = new Array<ProxyLogRecord | undefined>(Math.max(1, config.ringSize));
  let next = 0;
  const record = (entry: ProxyLogRecord): ProxyLogRecord => {
    ring[next] = entry;
    next = (next + 1) % ring.length;
    return entry;
  };

  const active = new Map<string, number>();
  const enter = (client: string): boolean => {
    const count = active.get(client) ?? 0;
    if (count >= config.maxConnectionsPerClient) return false;
    active.set(client, count + 1);
    return true;
  };
  const leave = (client: string) => {
    const count = (active.get(client) ?? 1) - 1;
    if (count <= 0) active.delete(client);
    else active.set(client, count);
  };
  const clientOf = (socket: Net.Socket) => (socket.remoteAddress ?? "?").replace(/^::ffff:/, "");

  // A short cache of answers: the vetted address is what gets dialled, so caching opens no
  // rebinding window; it only saves the resolver round trip (most of a proxied request's cost).
  const cache = new Map<string, { addresses: string[]; until: number }>();
  const resolve = (host: string): Promise<string[]> => {
    if (parseIPv4(host) || parseIPv6(host)) return Promise.resolve([host]);
    const pinned = config.hosts[host];
    if (pinned) return Promise.resolve(pinned);
    const hit = cache.get(host);
    if (hit && hit.until > Date.now()) return Promise.resolve(hit.addresses);
    return new Promise((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`resolving ${host} timed out`)), config.connectTimeoutMs);
      // IPv4 only: the egress network has no IPv6 (and AAAA queries would only add latency).
      dns.lookup(host, { all: true, family: 4 }, (error, list) => {
        clearTimeout(timer);
        if (error) return fail(new Error(`could not resolve ${host}: ${error.code ?? error.message}`));
        const addresses = list.map((entry) => entry.address);
        if (config.dnsCacheMs > 0) {
          if (cache.size >= 1024) cache.clear();
          cache.set(host, { addresses, until: Date.now() + config.dnsCacheMs });
        }
        done(addresses);
      });
    });
  };

  /** Policy for one destination: rules and port before any DNS query, then the address check. */
  const vet = async (host: string, port: number): Promise<{ ok: true; address: string } | { ok: false; status: number; reason: string }> => {
    const decision = evaluateLayers(host, layers);
    if (!decision.allowed) return { ok: false, status: 403, reason: decision.reason };
    if (!config.ports.includes(port)) return { ok: false, status: 403, reason: `port ${port} is not allowed (allowed ports: ${config.ports.join(", ")})` };
    let addresses: string[];
    try {
      addresses = await resolve(host);
    } catch (error) {
      return { ok: false, status: 502, reason: (error as Error).message };
    }
    const choice = chooseAddress(host, addresses, { allowCidrs: config.allowAddresses, selfAddresses, sandboxCidrs: config.sandboxSubnets });
    return choice.ok ? choice : { ok: false, status: 403, reason: choice.reason };
  };

  const plain = (status: number, text: string, body: string) =>
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Isol8-Blocked: 1\r\nConnection: close\r\n\r\n${body}`;
  const statusText = (status: number) => http.STATUS_CODES[status] ?? "Error";
  const message = (what: string, reason: string) => `isol8 network filter: ${what} refused: ${reason}\n`;

  const hopByHop = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
  ];
  const forwardHeaders = (raw: string[]): Record<string, string | string[]> => {
    const drop = new Set(hopByHop);
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i]!.toLowerCase() === "connection") for (const token of raw[i + 1]!.split(",")) drop.add(token.trim().toLowerCase());
    }
    const out: Record<string, string | string[]> = {};
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      if (drop.has(name.toLowerCase())) continue;
      const existing = out[name];
      out[name] = existing === undefined ? raw[i + 1]! : [...(Array.isArray(existing) ? existing : [existing]), raw[i + 1]!];
    }
    return out;
  };

  const agent = new http.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16, timeout: config.idleTimeoutMs });

  const server = http.createServer({
    requireHostHeader: false,
    headersTimeout: 30_000,
    requestTimeout: 300_000,
    keepAliveTimeout: 5_000,
    maxHeaderSize: 32 * 1024,
  });

  server.on("connection", (socket: Net.Socket) => {
    const local = (socket.localAddress ?? "").replace(/^::ffff:/, "");
    if (!config.proxySubnets.some((cidr) => inCidr(local, cidr))) socket.destroy();
  });

  server.on("request", (req: Http.IncomingMessage, res: Http.ServerResponse) => {
    const time = Date.now();
    const client = clientOf(req.socket);
    const method = req.method ?? "?";
    const target = parseRequestTarget(method, req.url ?? "");
    const block = (status: number, host: string, path: string | null, reason: string) => {
      record({ time, client, method, host, path, action: "BLOCK", reason, status, durationMs: Date.now() - time, open: false });
      const body = message(`${method} ${host || req.url}`, reason);
      res.writeHead(status, {
        "content-type": "text/plain; charset=utf-8",
        "content-length": Buffer.byteLength(body),
        "x-isol8-blocked": "1",
        connection: "close",
      });
      res.end(body);
    };
    if (!target.ok) return block(target.status, target.host, target.path, target.reason);
    const hostValues: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === "host") hostValues.push(req.rawHeaders[i + 1]!);
    const hostProblem = checkHostHeader(hostValues, target);
    if (hostProblem) return block(403, target.host, target.path, hostProblem);
    if (!enter(client)) return block(429, target.host, target.path, `more than ${config.maxConnectionsPerClient} concurrent requests from ${client}`);
    const entry = record({ time, client, method, host: target.host, path: target.path, action: "ALLOW", durationMs: 0, open: true });
    let done = false;
    const finish = (status?: number) => {
      if (done) return;
      done = true;
      leave(client);
      entry.durationMs = Date.now() - time;
      if (status !== undefined) entry.status = status;
      entry.open = false;
    };
    res.on("close", () => finish());
    vet(target.host, target.port)
      .then((vetted) => {
        if (!vetted.ok) {
          entry.action = vetted.status === 403 ? "BLOCK" : "ALLOW";
          if (vetted.status === 403) entry.reason = vetted.reason;
          finish(vetted.status);
          const body = message(`${method} http://${hostHeaderFor(target.host, target.port)}${target.path}`, vetted.reason);
          res.writeHead(vetted.status, {
            "content-type": "text/plain; charset=utf-8",
            "content-length": Buffer.byteLength(body),
            "x-isol8-blocked": vetted.status === 403 ? "1" : "0",
            connection: "close",
          });
          res.end(body);
          return;
        }
        const headers = forwardHeaders(req.rawHeaders);
        headers.host = hostHeaderFor(target.host, target.port);
        const upstream = http.request({ host: vetted.address, port: target.port, method, path: target.path!, headers, agent, setHost: false });
        const connectTimer = setTimeout(() => upstream.destroy(new Error(`connecting to ${vetted.address}:${target.port} timed out`)), config.connectTimeoutMs);
        upstream.on("socket", (socket: Net.Socket) => {
          if (!socket.connecting) clearTimeout(connectTimer);
          else socket.once("connect", () => clearTimeout(connectTimer));
        });
        upstream.on("response", (answer: Http.IncomingMessage) => {
          clearTimeout(connectTimer);
          entry.status = answer.statusCode;
          res.writeHead(answer.statusCode ?? 502, answer.statusMessage, forwardHeaders(answer.rawHeaders));
          answer.pipe(res);
          answer.on("error", () => res.destroy());
        });
        upstream.on("error", (error: Error) => {
          clearTimeout(connectTimer);
          if (!res.headersSent) {
            const body = message(
              `${method} http://${hostHeaderFor(target.host, target.port)}${target.path}`,
              `upstream ${vetted.address}:${target.port}: ${error.message}`,
            );
            res.writeHead(502, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body), connection: "close" });
            res.end(body);
          } else res.destroy();
          finish(502);
        });
        req.pipe(upstream);
        res.on("close", () => {
          if (!res.writableFinished) upstream.destroy();
        });
      })
      .catch(() => {
        // A throw while forwarding ends this request only: never the proxy every sandbox uses.
        if (!res.headersSent) res.writeHead(502, { connection: "close" });
        res.destroy();
        finish(502);
      });
  });

  server.on("connect", (req: Http.IncomingMessage, socket: Net.Socket, head: Buffer) => {
    const time = Date.now();
    const client = clientOf(socket);
    socket.on("error", () => undefined);
    const target = parseRequestTarget("CONNECT", req.url ?? "");
    const refuse = (status: number, host: string, reason: string, action: "BLOCK" | "ALLOW") => {
      record({
        time,
        client,
        method: "CONNECT",
        host,
        path: null,
        action,
        ...(action === "BLOCK" ? { reason } : {}),
        status,
        durationMs: Date.now() - time,
        open: false,
      });
      socket.end(plain(status, statusText(status), message(`CONNECT ${host || req.url}`, reason)));
    };
    if (!target.ok) return refuse(target.status, target.host, target.reason, "BLOCK");
    if (!enter(client)) return refuse(429, target.host, `more than ${config.maxConnectionsPerClient} concurrent requests from ${client}`, "BLOCK");
    const entry = record({ time, client, method: "CONNECT", host: target.host, path: null, action: "ALLOW", durationMs: 0, open: true });
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      leave(client);
      entry.durationMs = Date.now() - time;
      entry.open = false;
    };
    socket.on("close", finish);
    // A client that hangs up before the tunnel is spliced would otherwise stay half-open.
    const onEarlyEnd = () => socket.destroy();
    socket.on("end", onEarlyEnd);
    vet(target.host, target.port)
      .then((vetted) => {
        if (socket.destroyed) return finish();
        if (!vetted.ok) {
          if (vetted.status === 403) {
            entry.action = "BLOCK";
            entry.reason = vetted.reason;
          }
          entry.status = vetted.status;
          finish();
          socket.end(plain(vetted.status, statusText(vetted.status), message(`CONNECT ${hostHeaderFor(target.host, target.port)}`, vetted.reason)));
          return;
        }
        const upstream = net.connect({ host: vetted.address, port: target.port });
        upstream.pause();
        const connectTimer = setTimeout(() => upstream.destroy(new Error(`connecting to ${vetted.address}:${target.port} timed out`)), config.connectTimeoutMs);
        let established = false;
        upstream.on("error", (error: Error) => {
          clearTimeout(connectTimer);
          if (!established) {
            entry.status = 502;
            finish();
            socket.end(
              plain(
                502,
                "Bad Gateway",
                message(`CONNECT ${hostHeaderFor(target.host, target.port)}`, `upstream ${vetted.address}:${target.port}: ${error.message}`),
              ),
            );
          } else socket.destroy();
        });
        socket.on("close", () => upstream.destroy());
        upstream.on("close", () => socket.destroy());
        upstream.once("connect", () => {
          clearTimeout(connectTimer);
          established = true;
          entry.status = 200;
          socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
          const splice = (first: Buffer) => {
            socket.removeListener("end", onEarlyEnd);
            if (first.length) upstream.write(first);
            socket.pipe(upstream);
            upstream.pipe(socket);
            upstream.resume();
            socket.resume();
            socket.setTimeout(config.idleTimeoutMs, () => socket.destroy());
          };
          if (!config.inspectTunnels) return splice(head);
          // Peek at the first bytes before any goes upstream (and hold the server's bytes meanwhile).
          let buffered = head;
          const reject = (reason: string) => {
            clearTimeout(peekTimer);
            socket.removeListener("data", onData);
            entry.action = "BLOCK";
            entry.reason = reason;
            upstream.destroy();
            socket.destroy();
          };
          const peekTimer = setTimeout(() => reject("nothing (no TLS ClientHello, no HTTP request) within 10 s"), 10_000);
          const check = () => {
            const verdict = inspectTunnelStart(buffered, target);
            if (verdict.status === "more") return;
            if (verdict.status === "block") return reject(verdict.reason);
            clearTimeout(peekTimer);
            socket.removeListener("data", onData);
            socket.pause();
            splice(buffered);
          };
          const onData = (chunk: Buffer) => {
            buffered = Buffer.concat([buffered, chunk]);
            check();
          };
          socket.on("data", onData);
          if (buffered.length) check();
        });
      })
      .catch(() => {
        // A throw while opening the tunnel ends this tunnel only: never the proxy every sandbox uses.
        entry.status = 502;
        finish();
        socket.destroy();
      });
  });

  server.on("upgrade", (req: Http.IncomingMessage, socket: Net.Socket) => {
    const target = parseRequestTarget(req.method ?? "GET", req.url ?? "");
    const host = target.host;
    const reason = "protocol upgrades (WebSocket over http://, h2c) are not supported: HTTP and HTTPS only (wss:// works through CONNECT)";
    record({
      time: Date.now(),
      client: clientOf(socket),
      method: req.method ?? "?",
      host,
      path: target.ok ? target.path : null,
      action: "BLOCK",
      reason,
      status: 403,
      durationMs: 0,
      open: false,
    });
    socket.on("error", () => undefined);
    socket.end(plain(403, "Forbidden", message(`${req.method} ${req.url}`, reason)));
  });

  server.on("clientError", (error: NodeJS.ErrnoException, socket: Net.Socket) => {
    socket.on("error", () => undefined);
    if (!error.code?.startsWith("HPE_") || !socket.writable) return socket.destroy();
    const reason = `not a valid HTTP request (${error.code}): HTTP and HTTPS only`;
    record({ time: Date.now(), client: clientOf(socket), method: "-", host: "", path: null, action: "BLOCK", reason, status: 400, durationMs: 0, open: false });
    socket.end(plain(400, "Bad Request", message("request", reason)));
  });

  const tokenBytes = Buffer.from(`Bearer ${config.token}`);
  const logServer = http.createServer((req: Http.IncomingMessage, res: Http.ServerResponse) => {
    const given = Buffer.from(req.headers.authorization ?? "");
    if (given.length !== tokenBytes.length || !crypto.timingSafeEqual(given, tokenBytes)) {
      res.writeHead(401).end();
      return;
    }
    const url = new URL(req.url ?? "/", "http://log");
    if (url.pathname === "/health") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ok: true, proxyAddress, logAddress }));
      return;
    }
    if (url.pathname !== "/logs") {
      res.writeHead(404).end();
      return;
    }
    const client = url.searchParams.get("client") ?? "";
    const since = Number(url.searchParams.get("since") ?? 0);
    const until = Number(url.searchParams.get("until") ?? Date.now());
    const deadline = Date.now() + Math.min(Number(url.searchParams.get("settle") ?? 0), 5_000);
    const collect = () => {
      const list: ProxyLogRecord[] = [];
      for (let i = 0; i < ring.length; i++) {
        const entry = ring[(next + i) % ring.length];
        if (entry && entry.client === client && entry.time >= since && entry.time <= until) list.push(entry);
      }
      return list;
    };
    // Wait (bounded) for requests still in flight, so a tunnel closing as the program exits is complete.
    const answer = () => {
      const list = collect();
      if (list.some((e) => e.open) && Date.now() < deadline) {
        setTimeout(answer, 20);
        return;
      }
      const now = Date.now();
      const body = JSON.stringify(list.map((e) => (e.open ? { ...e, durationMs: now - e.time } : e)));
      res.writeHead(200, { "content-type": "application/json" }).end(body);
    };
    answer();
  });

  const listen = (srv: Http.Server, port: number, address: string) =>
    new Promise<void>((done, fail) => {
      srv.once("error", fail);
      srv.listen(port, address, () => {
        srv.removeListener("error", fail);
        done();
      });
    });
  return Promise.all([listen(server, config.proxyPort, proxyAddress), listen(logServer, config.logPort, logAddress)]).then(() => ({
    proxyAddress,
    proxyPort: (server.address() as Net.AddressInfo).port,
    logAddress,
    logPort: (logServer.address() as Net.AddressInfo).port,
    close: () =>
      new Promise<void>((done) => {
        agent.destroy();
        server.closeAllConnections();
        logServer.closeAllConnections();
        let pending = 2;
        const one = () => --pending === 0 && done();
        server.close(one);
        logServer.close(one);
      }),
  }));
}
