import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import Docker from "dockerode";
import { WebSocketServer } from "ws";
import { LeaseStore } from "./leases.js";
import { PodStore, FACADE_LABEL, type PodStoreOptions } from "./pods.js";
import { forbidden, StatusError } from "./status.js";
import { EarlyMessages, serveAttach, serveExec } from "./streams.js";

export interface FacadeOptions extends Partial<PodStoreOptions> {
  /** The bearer token clients must send (401 otherwise). */
  token?: string;
  /** Channel protocols offered, best first (a v4-only API server: ["v4.channel.k8s.io"]). */
  protocols?: string[];
  docker?: Docker;
}

/** "verb resource" pairs the façade's RBAC refuses with 403, e.g. "delete pods", "create pods/exec". */
export type Denial =
  `${"create" | "get" | "list" | "delete"} ${"pods" | "pods/attach" | "pods/exec"}` | `${"create" | "get" | "list" | "update" | "delete"} leases`;

const PODS = /^\/api\/v1\/namespaces\/([^/]+)\/pods(?:\/([^/]+))?(?:\/(attach|exec))?$/;
const LEASES = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?$/;

/**
 * A Kubernetes API server for tests, on 127.0.0.1: the subset the Kubernetes driver uses (leases
 * create/get/list/replace/delete for engine liveness, pods
 * create/get/list by label selector/delete, pods/attach and pods/exec over the channel
 * WebSocket protocol, v5 and v4), Status error bodies, backed by real Docker containers.
 */
export class KubernetesFacade {
  readonly store: PodStore;
  readonly leases = new LeaseStore();
  readonly docker: Docker;
  readonly token: string;
  /** Refused calls (RBAC) and requests seen, for tests. */
  readonly denied = new Set<Denial>();
  readonly requests: string[] = [];
  #server: Server | undefined;
  readonly #wss: WebSocketServer;
  readonly #sockets = new Set<Socket>();
  readonly #protocols: string[];

  constructor(options: FacadeOptions = {}) {
    this.docker = options.docker ?? new Docker();
    this.store = new PodStore(this.docker, {
      podPidsLimit: options.podPidsLimit ?? 256,
      ...(options.maxPods !== undefined && { maxPods: options.maxPods }),
      ...(options.egressNetwork !== undefined && { egressNetwork: options.egressNetwork }),
    });
    this.token = options.token ?? "facade-token";
    this.#protocols = options.protocols ?? ["v5.channel.k8s.io", "v4.channel.k8s.io"];
    this.#wss = new WebSocketServer({
      noServer: true,
      handleProtocols: (offered) => this.#protocols.find((p) => offered.has(p)) ?? false,
    });
  }

  async listen(): Promise<string> {
    const server = createServer((req, res) => void this.#handle(req, res));
    server.on("connection", (socket) => {
      this.#sockets.add(socket);
      socket.once("close", () => this.#sockets.delete(socket));
    });
    server.on("upgrade", (req, socket, head) => void this.#upgrade(req, socket as Socket, head));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.#server = server;
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** A kubeconfig (YAML) for the façade. */
  kubeconfig(server: string, namespace: string): string {
    return [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      // client-node speaks plain HTTP only with TLS verification off (the façade has no TLS).
      `- name: facade\n  cluster:\n    server: ${server}\n    insecure-skip-tls-verify: true`,
      "users:",
      `- name: test\n  user:\n    token: ${this.token}`,
      "contexts:",
      `- name: facade\n  context:\n    cluster: facade\n    user: test\n    namespace: ${namespace}`,
      "current-context: facade",
      "",
    ].join("\n");
  }

  async close(): Promise<void> {
    for (const client of this.#wss.clients) client.terminate();
    this.#wss.close();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    await this.store.close();
    // Whatever a failed start left (a container or volume of a pod already forgotten).
    const containers = await this.docker.listContainers({ all: true, filters: { label: [`${FACADE_LABEL}=${this.store.id}`] } });
    for (const c of containers) await this.docker.getContainer(c.Id).remove({ force: true, v: true });
    const { Volumes } = await this.docker.listVolumes({ filters: { label: [`${FACADE_LABEL}=${this.store.id}`] } });
    for (const v of Volumes ?? []) await this.docker.getVolume(v.Name).remove();
  }

  #authorize(req: IncomingMessage): void {
    if (req.headers.authorization !== `Bearer ${this.token}`) throw new StatusError(401, "Unauthorized", "Unauthorized");
  }

  #check(verb: "create" | "get" | "list" | "update" | "delete", resource: "pods" | "pods/attach" | "pods/exec" | "leases", namespace: string): void {
    if (this.denied.has(`${verb} ${resource}` as Denial)) throw forbidden(verb, resource, namespace, resource === "leases" ? "coordination.k8s.io" : "");
  }

  /** Leases (coordination.k8s.io/v1): create, get, list, replace (PUT), delete. */
  async #leases(req: IncomingMessage, res: ServerResponse, url: URL, namespace: string, name: string | undefined): Promise<unknown> {
    const verb =
      req.method === "POST" && !name
        ? "create"
        : req.method === "GET"
          ? name
            ? "get"
            : "list"
          : req.method === "PUT" && name
            ? "update"
            : req.method === "DELETE" && name
              ? "delete"
              : undefined;
    if (!verb) throw new StatusError(405, "MethodNotAllowed", `the server does not allow this method on the requested resource`);
    this.#check(verb, "leases", namespace);
    if (verb === "create") {
      res.statusCode = 201;
      return this.leases.create(namespace, JSON.parse(await readBody(req)));
    }
    if (verb === "get") return this.leases.get(namespace, name!);
    if (verb === "update") return this.leases.replace(namespace, name!, JSON.parse(await readBody(req)));
    if (verb === "delete") return this.leases.delete(namespace, name!);
    const items = this.leases.list(namespace, url.searchParams.get("labelSelector") ?? undefined);
    return { kind: "LeaseList", apiVersion: "coordination.k8s.io/v1", metadata: { resourceVersion: "1" }, items };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://facade");
    this.requests.push(`${req.method} ${url.pathname}`);
    try {
      this.#authorize(req);
      const lease = LEASES.exec(url.pathname);
      if (lease) {
        const body = await this.#leases(req, res, url, lease[1]!, lease[2]);
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify(body));
        return;
      }
      const match = PODS.exec(url.pathname);
      if (!match || match[3]) throw new StatusError(404, "NotFound", `the server could not find the requested resource (${req.method} ${url.pathname})`);
      const [, namespace, name] = match as unknown as [string, string, string | undefined];
      let body: unknown;
      if (req.method === "POST" && !name) {
        this.#check("create", "pods", namespace);
        res.statusCode = 201;
        body = this.store.create(namespace, JSON.parse(await readBody(req)));
      } else if (req.method === "GET" && name) {
        this.#check("get", "pods", namespace);
        body = await this.store.get(namespace, name);
      } else if (req.method === "GET") {
        this.#check("list", "pods", namespace);
        const items = await this.store.listPods(namespace, url.searchParams.get("labelSelector") ?? undefined);
        body = { kind: "PodList", apiVersion: "v1", metadata: { resourceVersion: "1" }, items };
      } else if (req.method === "DELETE" && name) {
        this.#check("delete", "pods", namespace);
        body = await this.store.delete(namespace, name);
      } else throw new StatusError(405, "MethodNotAllowed", `the server does not allow this method on the requested resource`);
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(body));
    } catch (error) {
      const status = error instanceof StatusError ? error : new StatusError(500, "InternalError", `Internal error occurred: ${(error as Error).message}`);
      res.statusCode = status.code;
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(status.body()));
    }
  }

  async #upgrade(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? "/", "http://facade");
    this.requests.push(`UPGRADE ${url.pathname}`);
    let target: { containerId: string; kind: "attach" | "exec"; namespace: string };
    try {
      this.#authorize(req);
      const match = PODS.exec(url.pathname);
      if (!match?.[2] || !match[3]) throw new StatusError(404, "NotFound", "the server could not find the requested resource");
      const [, namespace, name, kind] = match as unknown as [string, string, string, "attach" | "exec"];
      this.#check("create", `pods/${kind}`, namespace);
      const containerId = this.store.containerOf(namespace, name);
      if (!containerId) throw new StatusError(400, "BadRequest", `container sandbox is not valid for pod ${name}: pod is not running`);
      target = { containerId, kind, namespace };
    } catch (error) {
      const status = error instanceof StatusError ? error : new StatusError(500, "InternalError", String(error));
      const body = JSON.stringify(status.body());
      socket.end(
        `HTTP/1.1 ${status.code} ${status.reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const early = new EarlyMessages(ws);
      const done =
        target.kind === "attach"
          ? serveAttach(ws, early, this.docker, target.containerId)
          : serveExec(ws, early, this.docker, target.containerId, url.searchParams.getAll("command"), url.searchParams.get("stdin") === "true");
      done.catch(() => ws.terminate());
    });
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
