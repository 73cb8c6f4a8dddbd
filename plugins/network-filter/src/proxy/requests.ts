/**
 * What a request names and whether it is what it claims: host names and authorities, the
 * request target, the Host header, and the first bytes of a CONNECT tunnel (TLS ClientHello or
 * HTTP/1.x request).
 *
 * Part of the proxy program, shipped as source text (see ../script.ts): a function here uses
 * only its parameters, JavaScript globals and the other functions of this file.
 */

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
