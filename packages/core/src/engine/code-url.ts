/**
 * Code from a URL, pinned by its hash (request.codeUrl + request.codeHash): fetched by the
 * engine's host, never from inside the sandbox, and only as the operator's `codeUrl` option
 * allows: enabled, an allow-listed host, a public address (unless allowPrivateAddresses), within
 * maxBytes and timeoutMs. The sha256 is checked before anything runs.
 *
 * The host name is resolved once, every address is checked, and the connection is pinned to the
 * checked address (the socket's lookup answers with it), so a second DNS answer (rebinding)
 * cannot send the request elsewhere. Redirects are not followed (the target would escape the
 * checks). HTTP(S)_PROXY is not used: a proxy would connect to addresses this file never checked.
 */
import { createHash } from "node:crypto";
import { lookup } from "node:dns/promises";
import type { IncomingMessage } from "node:http";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";
import { formatBytes, InvalidRequestError, type ResolvedEngineOptions, type ValidatedRequest } from "@isol8/kit";

export type CodeUrlPolicy = ResolvedEngineOptions["codeUrl"];

/**
 * The request with its code fetched: `code` holds the checked bytes and codeUrl/codeHash are gone,
 * so everything after (hooks, prepareJob, audit) sees one source. A request without codeUrl is
 * returned as it is.
 */
export async function resolveCodeUrl(request: ValidatedRequest, policy: CodeUrlPolicy, signal: AbortSignal): Promise<ValidatedRequest> {
  const { codeUrl, codeHash, ...rest } = request;
  if (codeUrl === undefined) return request;
  if (codeHash === undefined) throw new InvalidRequestError("request.codeHash: required with request.codeUrl (the sha256 of the code, 64 hex digits)");
  const code = await fetchPinnedCode(codeUrl, codeHash, policy, signal);
  return { ...rest, code } as ValidatedRequest;
}

/** Fetches the code at `url` under the policy and returns it once its sha256 equals `expectedHash`. */
export async function fetchPinnedCode(url: string, expectedHash: string, policy: CodeUrlPolicy, signal: AbortSignal): Promise<Buffer> {
  if (!policy.enabled) {
    throw new InvalidRequestError(
      "request.codeUrl: fetching code from a URL is disabled on this engine (its operator enables it with the engine option codeUrl: { enabled: true, allowHosts: [...] })",
    );
  }
  const target = parseUrl(url);
  const shown = `${target.origin}${target.pathname}`; // no user:password, no query (it may carry a token)
  const host = hostOf(target);
  if (!hostAllowed(host, policy.allowHosts)) {
    throw new InvalidRequestError(
      `request.codeUrl: host "${host}" is not on this engine's allow-list (codeUrl.allowHosts: ${policy.allowHosts.join(", ") || "empty"})`,
    );
  }

  // One deadline for the whole fetch (resolving, connecting, reading), and the execution's own cancel.
  const deadline = AbortSignal.timeout(policy.timeoutMs);
  const abort = AbortSignal.any([deadline, signal]);
  const overTime = () => new InvalidRequestError(`request.codeUrl: fetching ${shown} took over ${policy.timeoutMs} ms (codeUrl.timeoutMs); nothing was run`);
  try {
    const address = await checkedAddress(host, policy, abort);
    const body = await download(target, address, policy.maxBytes, shown, abort);
    const actual = createHash("sha256").update(body).digest("hex");
    if (actual !== expectedHash.toLowerCase()) {
      throw new InvalidRequestError(`request.codeHash: the code at ${shown} has sha256 ${actual}, expected ${expectedHash.toLowerCase()}; nothing was run`);
    }
    return body;
  } catch (error) {
    // The deadline cut the fetch short (whatever the socket reported): say so.
    if (deadline.aborted && !signal.aborted) throw overTime();
    throw error;
  }
}

function parseUrl(url: string): URL {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new InvalidRequestError(`request.codeUrl: expected an http:// or https:// URL, got ${JSON.stringify(url.slice(0, 200))}`);
  }
  if (target.protocol !== "http:" && target.protocol !== "https:") {
    throw new InvalidRequestError(`request.codeUrl: expected an http:// or https:// URL, got the scheme "${target.protocol.slice(0, -1)}"`);
  }
  return target;
}

/** The URL's host name, lower case, an IPv6 literal without its brackets. */
function hostOf(target: URL): string {
  return target.hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();
}

/** An entry is a host name or address, exactly; "*.example.com" allows the names under example.com. */
export function hostAllowed(host: string, allowHosts: readonly string[]): boolean {
  return allowHosts.some((entry) => {
    const rule = entry.toLowerCase().replace(/^\[(.*)\]$/, "$1");
    return rule.startsWith("*.") ? host.endsWith(rule.slice(1)) && host.length > rule.length - 1 : host === rule;
  });
}

/**
 * The address to connect to: the host's addresses (IPv4 first), every one of them checked, so a
 * name with one public and one private address is refused whichever the resolver puts first.
 */
async function checkedAddress(host: string, policy: CodeUrlPolicy, signal: AbortSignal): Promise<{ address: string; family: 4 | 6 }> {
  let addresses: { address: string; family: number }[];
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }];
  else {
    const resolving = lookup(host, { all: true, verbatim: true }).catch((error: NodeJS.ErrnoException) => {
      throw new InvalidRequestError(`request.codeUrl: cannot resolve the host "${host}" (${error.code ?? error.message})`);
    });
    addresses = await abortable(resolving, signal);
    if (addresses.length === 0) throw new InvalidRequestError(`request.codeUrl: the host "${host}" has no address`);
  }
  if (!policy.allowPrivateAddresses) {
    for (const { address, family } of addresses) {
      const kind = nonPublicKind(address, family === 6 ? "ipv6" : "ipv4");
      if (kind) {
        throw new InvalidRequestError(
          `request.codeUrl: "${host}" resolves to ${address}, a ${kind} address; code is fetched from public addresses only (the operator allows others with codeUrl.allowPrivateAddresses)`,
        );
      }
    }
  }
  const chosen = [...addresses].sort((a, b) => a.family - b.family)[0]!;
  return { address: chosen.address, family: chosen.family === 6 ? 6 : 4 };
}

/** Address ranges that are not globally reachable (IANA special-purpose registries), plus cloud metadata. */
const NON_PUBLIC: readonly [kind: string, cidr: string, family: "ipv4" | "ipv6"][] = [
  ["unspecified", "0.0.0.0/8", "ipv4"],
  ["private", "10.0.0.0/8", "ipv4"],
  ["carrier-grade NAT", "100.64.0.0/10", "ipv4"],
  ["loopback", "127.0.0.0/8", "ipv4"],
  ["link-local", "169.254.0.0/16", "ipv4"],
  ["private", "172.16.0.0/12", "ipv4"],
  ["reserved", "192.0.0.0/24", "ipv4"],
  ["documentation", "192.0.2.0/24", "ipv4"],
  ["private", "192.168.0.0/16", "ipv4"],
  ["benchmarking", "198.18.0.0/15", "ipv4"],
  ["documentation", "198.51.100.0/24", "ipv4"],
  ["documentation", "203.0.113.0/24", "ipv4"],
  ["multicast", "224.0.0.0/4", "ipv4"],
  ["reserved", "240.0.0.0/4", "ipv4"],
  ["unspecified", "::/128", "ipv6"],
  ["loopback", "::1/128", "ipv6"],
  ["IPv4-mapped", "::ffff:0:0/96", "ipv6"],
  ["reserved", "::/96", "ipv6"],
  ["NAT64", "64:ff9b::/96", "ipv6"],
  ["private", "64:ff9b:1::/48", "ipv6"],
  ["reserved", "100::/64", "ipv6"],
  ["reserved", "2001::/23", "ipv6"],
  ["documentation", "2001:db8::/32", "ipv6"],
  ["6to4", "2002::/16", "ipv6"],
  ["unique-local", "fc00::/7", "ipv6"],
  ["link-local", "fe80::/10", "ipv6"],
  ["multicast", "ff00::/8", "ipv6"],
];

const nonPublicLists = NON_PUBLIC.map(([kind, cidr, family]) => {
  const list = new BlockList();
  const [network, prefix] = cidr.split("/") as [string, string];
  list.addSubnet(network, Number(prefix), family);
  return { kind, list, family };
});

/** The kind of a non-public address ("loopback", "private", ...), or undefined for a public one. */
export function nonPublicKind(address: string, family: "ipv4" | "ipv6"): string | undefined {
  if (family === "ipv6" && (parseInt(address.split(":")[0] || "0", 16) & 0xe000) !== 0x2000) {
    // Outside 2000::/3 (global unicast) nothing is public; the list names the common kinds.
    return nonPublicLists.find((entry) => entry.family === "ipv6" && entry.list.check(address, "ipv6"))?.kind ?? "reserved";
  }
  return nonPublicLists.find((entry) => entry.family === family && entry.list.check(address, family))?.kind;
}

/** GET the URL from the pinned address; the body, refused past maxBytes. */
function download(target: URL, pinned: { address: string; family: 4 | 6 }, maxBytes: number, shown: string, signal: AbortSignal): Promise<Buffer> {
  // The socket's lookup answers with the checked address, whatever DNS would say now.
  const pinnedLookup: LookupFunction = (_hostname, options, callback) => {
    if (options.all) (callback as unknown as (e: null, all: { address: string; family: number }[]) => void)(null, [pinned]);
    else callback(null, pinned.address, pinned.family);
  };
  const send = target.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise<Buffer>((resolve, reject) => {
    const fail = (error: Error) => {
      request.destroy();
      reject(error);
    };
    const request = send(target, { method: "GET", lookup: pinnedLookup, signal, agent: false, headers: { accept: "*/*" } }, (response: IncomingMessage) => {
      const status = response.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        response.resume();
        return fail(
          new InvalidRequestError(
            `request.codeUrl: ${shown} answered HTTP ${status} (a redirect${response.headers.location ? ` to ${response.headers.location}` : ""}); redirects are not followed: give the final URL`,
          ),
        );
      }
      if (status !== 200) {
        response.resume();
        return fail(new InvalidRequestError(`request.codeUrl: ${shown} answered HTTP ${status}, expected 200`));
      }
      const tooLarge = () => new InvalidRequestError(`request.codeUrl: ${shown} sent over ${formatBytes(maxBytes)} (codeUrl.maxBytes); nothing was run`);
      const declared = Number(response.headers["content-length"]);
      if (Number.isFinite(declared) && declared > maxBytes) return fail(tooLarge());
      const chunks: Buffer[] = [];
      let received = 0;
      response.on("data", (chunk: Buffer) => {
        received += chunk.length;
        if (received > maxBytes) return fail(tooLarge()); // stop reading: the rest is never taken in
        chunks.push(chunk);
      });
      response.on("end", () => resolve(Buffer.concat(chunks)));
      response.on("error", (error) => fail(fetchError(shown, error)));
      response.on("aborted", () => fail(fetchError(shown, new Error("the connection closed before the body ended"))));
    });
    request.on("error", (error) => reject(fetchError(shown, error)));
    request.end();
  });
}

function fetchError(shown: string, error: Error): InvalidRequestError {
  if (InvalidRequestError.isInstance(error)) return error;
  const code = (error as NodeJS.ErrnoException).code;
  return new InvalidRequestError(`request.codeUrl: fetching ${shown} failed: ${code && !error.message.includes(code) ? `${code} ` : ""}${error.message}`);
}

/** A promise that rejects when the signal aborts (dns.lookup takes no signal). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => (signal.removeEventListener("abort", onAbort), resolve(value)),
      (error: unknown) => (signal.removeEventListener("abort", onAbort), reject(error as Error)),
    );
  });
}
