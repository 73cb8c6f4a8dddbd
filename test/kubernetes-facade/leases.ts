import { randomBytes } from "node:crypto";
import type { V1Lease } from "@kubernetes/client-node";
import { parseSelector } from "./pods.js";
import { StatusError } from "./status.js";

const leaseNotFound = (name: string) => new StatusError(404, "NotFound", `leases.coordination.k8s.io "${name}" not found`, { name, kind: "leases" });

/**
 * Leases (coordination.k8s.io/v1) as the API server keeps them: create (409 AlreadyExists), get,
 * list by label selector, replace with optimistic concurrency (a stale metadata.resourceVersion
 * is a 409 Conflict; none is an unconditional update), delete. Times are stored as the client sent them.
 */
export class LeaseStore {
  readonly #leases = new Map<string, V1Lease>();
  #version = 0;

  #stamp(namespace: string, lease: V1Lease, name: string, uid: string, created: Date): V1Lease {
    const stored: V1Lease = {
      ...lease,
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { ...lease.metadata, name, namespace, uid, creationTimestamp: created, resourceVersion: String(++this.#version) },
    };
    this.#leases.set(`${namespace}/${name}`, stored);
    return stored;
  }

  create(namespace: string, lease: V1Lease): V1Lease {
    const name = lease.metadata?.name;
    if (!name)
      throw new StatusError(422, "Invalid", "Lease is invalid: metadata.name: Required value", {
        kind: "Lease",
        causes: [{ field: "metadata.name", reason: "FieldValueRequired", message: "Required value" }],
      });
    if (this.#leases.has(`${namespace}/${name}`))
      throw new StatusError(409, "AlreadyExists", `leases.coordination.k8s.io "${name}" already exists`, { name, kind: "leases" });
    return this.#stamp(namespace, lease, name, randomBytes(16).toString("hex"), new Date());
  }

  get(namespace: string, name: string): V1Lease {
    const lease = this.#leases.get(`${namespace}/${name}`);
    if (!lease) throw leaseNotFound(name);
    return lease;
  }

  list(namespace: string, selector: string | undefined): V1Lease[] {
    const matches = parseSelector(selector);
    return [...this.#leases.values()].filter((l) => l.metadata?.namespace === namespace && matches(l.metadata?.labels ?? {}));
  }

  replace(namespace: string, name: string, lease: V1Lease): V1Lease {
    const current = this.get(namespace, name);
    const version = lease.metadata?.resourceVersion;
    if (version !== undefined && version !== "" && version !== current.metadata?.resourceVersion) {
      throw new StatusError(
        409,
        "Conflict",
        `Operation cannot be fulfilled on leases.coordination.k8s.io "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        { name, kind: "leases" },
      );
    }
    return this.#stamp(namespace, lease, name, current.metadata!.uid!, current.metadata!.creationTimestamp!);
  }

  delete(namespace: string, name: string): Record<string, unknown> {
    this.get(namespace, name);
    this.#leases.delete(`${namespace}/${name}`);
    return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details: { name, group: "coordination.k8s.io", kind: "leases" } };
  }
}
