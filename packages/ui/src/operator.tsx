import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, describeError, type Api } from "./api.js";

/** GET /admin/overview (admin tenants only): what this server node holds and did. */
export interface Overview {
  node: string;
  version: string;
  uptimeSeconds: number;
  sessions: { tenant: string; id: string; runtime?: string; createdAt: string; ageSeconds: number; executions: number; active: boolean }[];
  queue: { running: number; queued: number; maxConcurrent: number; maxQueue: number };
  executionsTotal: number;
  failures: { time: string; tenant: string | null; method: string; path: string; status: number; code: string; message: string }[];
  /** POST /admin/drain was called: GET /ready fails, requests are still served. */
  draining: boolean;
}

const POLL_MS = 2000;

/** Polls the overview; executions per second is the change of the server's execution counter between two polls. */
export function OperatorView({ api }: { api: Api }) {
  const [overview, setOverview] = useState<Overview>();
  const [rate, setRate] = useState<number>();
  const [error, setError] = useState("");
  const last = useRef<{ at: number; total: number } | undefined>(undefined);

  useEffect(() => {
    let stopped = false;
    const poll = async () => {
      try {
        const next = await api.json<Overview>("GET", "/admin/overview");
        if (stopped) return;
        const now = performance.now();
        if (last.current) setRate(((next.executionsTotal - last.current.total) * 1000) / (now - last.current.at));
        last.current = { at: now, total: next.executionsTotal };
        setOverview(next);
        setError("");
      } catch (e) {
        if (stopped) return;
        const refused = e instanceof ApiError && (e.status === 403 || e.status === 404);
        setError(refused ? `The operator view needs the key of an admin tenant (server.adminTenants): ${describeError(e)}` : describeError(e));
        // A refusal will not change while the page lives: stop asking.
        if (refused) clearInterval(timer);
      }
    };
    const timer = setInterval(() => void poll(), POLL_MS);
    void poll();
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [api]);

  const drain = async () => {
    try {
      await api.json("POST", "/admin/drain");
      setOverview((current) => current && { ...current, draining: true });
    } catch (e) {
      setError(describeError(e));
    }
  };

  if (!overview)
    return (
      <section class="operator">
        {error ? (
          <p class="error" role="alert" data-testid="operator-error">
            {error}
          </p>
        ) : (
          <p>Loading…</p>
        )}
      </section>
    );
  const { queue } = overview;
  return (
    <section class="operator" aria-label="Operator view">
      {error && <p class="error">{error}</p>}
      <p class="facts">
        node <b>{overview.node}</b> · version {overview.version} · up {Math.round(overview.uptimeSeconds)} s · running{" "}
        <b data-testid="running">
          {queue.running}/{queue.maxConcurrent}
        </b>{" "}
        · queue depth{" "}
        <b data-testid="queue-depth">
          {queue.queued}/{queue.maxQueue}
        </b>{" "}
        · executions/s <b data-testid="exec-rate">{rate === undefined ? "…" : rate.toFixed(2)}</b> ({overview.executionsTotal} in all)
      </p>
      <p class="facts">
        {overview.draining ? (
          <b data-testid="draining">Draining: GET /ready fails, so a balancer sends no new work; requests are still served until a restart.</b>
        ) : (
          <button data-testid="drain" onClick={() => void drain()}>
            Drain this node (GET /ready fails)
          </button>
        )}
      </p>
      <h3>Live sessions ({overview.sessions.length})</h3>
      <table data-testid="sessions">
        <thead>
          <tr>
            <th>tenant</th>
            <th>session</th>
            <th>runtime</th>
            <th>age</th>
            <th>executions</th>
            <th>active</th>
          </tr>
        </thead>
        <tbody>
          {overview.sessions.map((s) => (
            <tr key={`${s.tenant}/${s.id}`}>
              <td>{s.tenant}</td>
              <td>{s.id}</td>
              <td>{s.runtime ?? "—"}</td>
              <td>{Math.round(s.ageSeconds)} s</td>
              <td>{s.executions}</td>
              <td>{s.active ? "yes" : "no"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Last failures</h3>
      <table data-testid="failures">
        <thead>
          <tr>
            <th>time</th>
            <th>tenant</th>
            <th>request</th>
            <th>status</th>
            <th>code</th>
            <th>message</th>
          </tr>
        </thead>
        <tbody>
          {overview.failures.map((f, i) => (
            <tr key={i}>
              <td>{f.time}</td>
              <td>{f.tenant ?? "—"}</td>
              <td>
                {f.method} {f.path}
              </td>
              <td>{f.status}</td>
              <td>{f.code}</td>
              <td>{f.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
