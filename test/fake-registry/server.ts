/**
 * A minimal Docker Registry HTTP API V2 server for tests (not shipped): enough for the real
 * dockerd to push to it over plain HTTP on 127.0.0.1 (Docker allows 127.0.0.0/8 registries
 * without TLS). Blobs go to a temporary directory, checked against their digest; manifests are
 * kept in memory under their tag and their digest (sha256 of the bytes as received), which the
 * manifest PUT answers in Docker-Content-Digest. Optional Basic auth on every /v2/ request.
 */
import { createHash, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rename, rm, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";

export interface FakeRegistryOptions {
  /** Require Basic auth with these credentials on every /v2/ request. */
  auth?: { username: string; password: string };
  /** Answer every finishing blob PUT with this error (a layer upload failing mid-push: dockerd reports it inside its progress stream). */
  rejectUploads?: { status: number; code: string; message: string };
}

export interface StoredManifest {
  repository: string;
  digest: string;
  mediaType: string;
  body: Buffer;
}

export interface FakeRegistry {
  readonly port: number;
  /** `127.0.0.1:<port>` */
  readonly host: string;
  /** Manifests by `<repository>:<tag>` and by `<repository>@<digest>`. */
  readonly manifests: Map<string, StoredManifest>;
  /** Digests of the blobs stored. */
  readonly blobs: Set<string>;
  /** Counts of what clients did: uploads finished (blob PUTs), cross-repository mounts, rejected requests. */
  readonly stats: { blobUploads: number; mounts: number; unauthorized: number; digestMismatches: number };
  close(): Promise<void>;
}

const NAME = "[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*";
const ROUTES = {
  blob: new RegExp(`^/v2/(${NAME})/blobs/(sha256:[0-9a-f]{64})$`),
  uploads: new RegExp(`^/v2/(${NAME})/blobs/uploads/?$`),
  upload: new RegExp(`^/v2/(${NAME})/blobs/uploads/([0-9a-f-]{36})$`),
  manifest: new RegExp(`^/v2/(${NAME})/manifests/([A-Za-z0-9_.:-]+)$`),
};

function registryError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "Content-Type": "application/json", "Docker-Distribution-API-Version": "registry/2.0", ...headers });
  res.end(JSON.stringify({ errors: [{ code, message, detail: null }] }));
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function fileDigest(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return `sha256:${hash.digest("hex")}`;
}

export async function startFakeRegistry(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const dir = await mkdtemp(join(tmpdir(), "isol8-fake-registry-"));
  const manifests = new Map<string, StoredManifest>();
  const blobs = new Set<string>();
  const uploads = new Map<string, { repository: string; path: string; size: number }>();
  const stats = { blobUploads: 0, mounts: 0, unauthorized: 0, digestMismatches: 0 };
  const expectedAuth = options.auth ? `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString("base64")}` : undefined;
  const blobPath = (digest: string) => join(dir, digest.replace(":", "-"));

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://registry");
    const method = req.method ?? "GET";
    const common = { "Docker-Distribution-API-Version": "registry/2.0" };
    if (!url.pathname.startsWith("/v2/")) return registryError(res, 404, "NOT_FOUND", "not a registry path");
    if (expectedAuth && req.headers.authorization !== expectedAuth) {
      stats.unauthorized++;
      req.resume();
      return registryError(res, 401, "UNAUTHORIZED", "authentication required", { "WWW-Authenticate": 'Basic realm="isol8-fake-registry"' });
    }
    if (url.pathname === "/v2/") {
      res.writeHead(200, { ...common, "Content-Type": "application/json" });
      return void res.end("{}");
    }

    let match: RegExpMatchArray | null;
    if ((match = url.pathname.match(ROUTES.blob)) && (method === "HEAD" || method === "GET")) {
      const digest = match[2]!;
      if (!blobs.has(digest)) return registryError(res, 404, "BLOB_UNKNOWN", `blob ${digest} unknown`);
      const { size } = await stat(blobPath(digest));
      res.writeHead(200, { ...common, "Content-Length": String(size), "Docker-Content-Digest": digest, "Content-Type": "application/octet-stream" });
      if (method === "HEAD") return void res.end();
      await pipeline(createReadStream(blobPath(digest)), res);
      return;
    }

    if ((match = url.pathname.match(ROUTES.uploads)) && method === "POST") {
      const repository = match[1]!;
      const mount = url.searchParams.get("mount");
      req.resume();
      if (mount && blobs.has(mount)) {
        stats.mounts++;
        res.writeHead(201, { ...common, Location: `/v2/${repository}/blobs/${mount}`, "Docker-Content-Digest": mount, "Content-Length": "0" });
        return void res.end();
      }
      const id = randomUUID();
      const path = join(dir, `upload-${id}`);
      await new Promise<void>((resolve, reject) => createWriteStream(path).on("error", reject).end(resolve));
      uploads.set(id, { repository, path, size: 0 });
      res.writeHead(202, { ...common, Location: `/v2/${repository}/blobs/uploads/${id}`, "Docker-Upload-UUID": id, Range: "0-0", "Content-Length": "0" });
      return void res.end();
    }

    if ((match = url.pathname.match(ROUTES.upload)) && (method === "PATCH" || method === "PUT")) {
      const [, repository, id] = match as unknown as [string, string, string];
      const upload = uploads.get(id);
      if (!upload || upload.repository !== repository) {
        req.resume();
        return registryError(res, 404, "BLOB_UPLOAD_UNKNOWN", `upload ${id} unknown`);
      }
      const before = upload.size;
      let added = 0;
      req.on("data", (chunk: Buffer) => (added += chunk.length));
      await pipeline(req, createWriteStream(upload.path, { flags: "a" }));
      upload.size = before + added;
      if (method === "PATCH") {
        res.writeHead(202, {
          ...common,
          Location: `/v2/${repository}/blobs/uploads/${id}`,
          "Docker-Upload-UUID": id,
          Range: `0-${Math.max(upload.size - 1, 0)}`,
          "Content-Length": "0",
        });
        return void res.end();
      }
      if (options.rejectUploads) {
        const { status, code, message } = options.rejectUploads;
        return registryError(res, status, code, message);
      }
      const digest = url.searchParams.get("digest") ?? "";
      const actual = await fileDigest(upload.path);
      uploads.delete(id);
      if (digest !== actual) {
        stats.digestMismatches++;
        await rm(upload.path, { force: true });
        return registryError(res, 400, "DIGEST_INVALID", `provided digest ${digest} did not match uploaded content ${actual}`);
      }
      await rename(upload.path, blobPath(actual));
      blobs.add(actual);
      stats.blobUploads++;
      res.writeHead(201, { ...common, Location: `/v2/${repository}/blobs/${actual}`, "Docker-Content-Digest": actual, "Content-Length": "0" });
      return void res.end();
    }

    if ((match = url.pathname.match(ROUTES.manifest))) {
      const [, repository, reference] = match as unknown as [string, string, string];
      const key = reference.startsWith("sha256:") ? `${repository}@${reference}` : `${repository}:${reference}`;
      if (method === "HEAD" || method === "GET") {
        const stored = manifests.get(key);
        if (!stored) return registryError(res, 404, "MANIFEST_UNKNOWN", `manifest ${key} unknown`);
        res.writeHead(200, {
          ...common,
          "Content-Type": stored.mediaType,
          "Content-Length": String(stored.body.length),
          "Docker-Content-Digest": stored.digest,
        });
        return void res.end(method === "GET" ? stored.body : undefined);
      }
      if (method === "PUT") {
        const body = await readBody(req);
        const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
        if (reference.startsWith("sha256:") && reference !== digest)
          return registryError(res, 400, "DIGEST_INVALID", `manifest digest ${digest} does not match ${reference}`);
        let parsed: { config?: { digest?: string }; layers?: { digest?: string }[]; mediaType?: string };
        try {
          parsed = JSON.parse(body.toString("utf8"));
        } catch {
          return registryError(res, 400, "MANIFEST_INVALID", "manifest is not JSON");
        }
        const referenced = [parsed.config?.digest, ...(parsed.layers ?? []).map((l) => l.digest)].filter((d): d is string => typeof d === "string");
        const missing = referenced.filter((d) => !blobs.has(d));
        if (missing.length) return registryError(res, 400, "MANIFEST_BLOB_UNKNOWN", `blob unknown to registry: ${missing.join(", ")}`);
        const stored = { repository, digest, mediaType: String(req.headers["content-type"] ?? parsed.mediaType ?? ""), body };
        manifests.set(`${repository}@${digest}`, stored);
        if (!reference.startsWith("sha256:")) manifests.set(`${repository}:${reference}`, stored);
        res.writeHead(201, { ...common, Location: `/v2/${repository}/manifests/${digest}`, "Docker-Content-Digest": digest, "Content-Length": "0" });
        return void res.end();
      }
    }
    req.resume();
    registryError(res, 405, "UNSUPPORTED", `${method} ${url.pathname} is not implemented by the fake registry`);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) registryError(res, 500, "UNKNOWN", (error as Error).message);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    host: `127.0.0.1:${port}`,
    manifests,
    blobs,
    stats,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
