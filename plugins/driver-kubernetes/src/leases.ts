import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from "@kubernetes/client-node";
import { CONTAINER_LABELS, type SandboxOwnership } from "@isol8/kit";
import { classifyApiError } from "./errors.js";

/** The Lease an engine holds while it runs (coordination.k8s.io/v1): engine ids are UUIDs, valid in a name. */
export const leaseName = (engineId: string) => `isol8-engine-${engineId}`;

/**
 * Whether an engine's Lease says it is alive at `now`: it exists, names the engine as holder, and
 * was renewed within its duration. A missing Lease is a dead engine (it crashed before its first
 * Lease, or a reaper already removed it), and so is one whose holder is another.
 */
export function leaseAlive(lease: V1Lease | undefined, engineId: string, now: number): boolean {
  const spec = lease?.spec;
  if (!spec || spec.holderIdentity !== engineId || !spec.leaseDurationSeconds) return false;
  // client-node returns a MicroTime as the server's string; one built here is a Date.
  const renewed = new Date((spec.renewTime ?? spec.acquireTime) as unknown as string | Date).getTime();
  return Number.isFinite(renewed) && now - renewed <= spec.leaseDurationSeconds * 1000;
}

export interface LeaseOptions {
  namespace: string;
  durationSeconds: number;
  renewEveryMs: number;
}

const isNotFound = (error: unknown) => (error as { code?: unknown }).code === 404;

/**
 * Engine liveness as one Lease per engine, the way Kubernetes' own controllers hold leadership:
 * claim creates it (holderIdentity = the engine id) and renews renewTime every `renewEveryMs`
 * (an unref'd timer: it never keeps a process alive); release stops renewing and deletes it.
 * An engine whose pod was replaced or restarted stops renewing, and its Lease expires.
 */
export class EngineLeases implements SandboxOwnership {
  readonly #api: CoordinationV1Api;
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** Renewals in flight, so release() deletes after the last one (a renewal never re-creates a released Lease). */
  readonly #renewing = new Map<string, Promise<void>>();

  constructor(
    config: KubeConfig,
    readonly options: LeaseOptions,
  ) {
    this.#api = config.makeApiClient(CoordinationV1Api);
  }

  #body(engineId: string, resourceVersion?: string): V1Lease {
    const now = new V1MicroTime();
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name: leaseName(engineId),
        labels: { [CONTAINER_LABELS.managed]: "true", [CONTAINER_LABELS.engine]: engineId },
        ...(resourceVersion !== undefined && { resourceVersion }),
      },
      spec: { holderIdentity: engineId, leaseDurationSeconds: this.options.durationSeconds, acquireTime: now, renewTime: now },
    };
  }

  async claim(engineId: string): Promise<void> {
    const { namespace } = this.options;
    try {
      await this.#api.createNamespacedLease({ namespace, body: this.#body(engineId) });
    } catch (error) {
      if ((error as { code?: unknown }).code !== 409) throw classifyApiError(error, `creating lease ${leaseName(engineId)}`);
      await this.#renew(engineId); // left by an earlier start of this engine: taken over
    }
    clearInterval(this.#timers.get(engineId));
    const timer = setInterval(() => {
      if (this.#renewing.has(engineId)) return; // the last one still waits for the API server
      const renewal = this.#renew(engineId)
        // A failed renewal is retried at the next tick; if none succeeds the Lease expires, as it should.
        .catch(() => undefined)
        .finally(() => this.#renewing.delete(engineId));
      this.#renewing.set(engineId, renewal);
    }, this.options.renewEveryMs);
    timer.unref();
    this.#timers.set(engineId, timer);
  }

  /** Sets renewTime (a replace carrying the read resourceVersion: a concurrent writer makes it fail with 409, retried next tick). */
  async #renew(engineId: string): Promise<void> {
    const { namespace } = this.options;
    const name = leaseName(engineId);
    let current: V1Lease;
    try {
      current = await this.#api.readNamespacedLease({ name, namespace });
    } catch (error) {
      if (!isNotFound(error)) throw classifyApiError(error, `reading lease ${name}`);
      // Deleted under a live engine (a reaper judged it expired): claimed again.
      await this.#api.createNamespacedLease({ namespace, body: this.#body(engineId) });
      return;
    }
    const body = this.#body(engineId, current.metadata?.resourceVersion);
    if (current.spec?.holderIdentity === engineId && current.spec.acquireTime) body.spec!.acquireTime = current.spec.acquireTime;
    await this.#api.replaceNamespacedLease({ name, namespace, body });
  }

  async release(engineId: string): Promise<void> {
    clearInterval(this.#timers.get(engineId));
    this.#timers.delete(engineId);
    await this.#renewing.get(engineId);
    const name = leaseName(engineId);
    try {
      await this.#api.deleteNamespacedLease({ name, namespace: this.options.namespace });
    } catch (error) {
      if (!isNotFound(error)) throw classifyApiError(error, `deleting lease ${name}`);
    }
  }

  async alive(engineId: string): Promise<boolean> {
    const name = leaseName(engineId);
    try {
      return leaseAlive(await this.#api.readNamespacedLease({ name, namespace: this.options.namespace }), engineId, Date.now());
    } catch (error) {
      if (isNotFound(error)) return false;
      throw classifyApiError(error, `reading lease ${name}`);
    }
  }
}
