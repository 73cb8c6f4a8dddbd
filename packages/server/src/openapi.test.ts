import { describe, expect, test } from "vitest";
import { Metrics } from "./metrics.js";
import { openApiDocument } from "./openapi.js";

describe("openapi.json", () => {
  test("is generated from the zod schemas, with every endpoint and named components", () => {
    const doc = openApiDocument("1.2.3") as {
      openapi: string;
      paths: Record<string, unknown>;
      components: { schemas: Record<string, Record<string, unknown>> };
    };
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths).sort()).toEqual([
      "/cleanup",
      "/execute",
      "/execute/stream",
      "/execute/ws",
      "/file",
      "/health",
      "/metrics",
      "/openapi.json",
      "/ready",
      "/runtimes",
      "/session/{id}",
      "/session/{id}/contexts",
      "/session/{id}/contexts/{contextId}",
      "/session/{id}/contexts/{contextId}/restart",
      "/sessions",
    ]);
    const body = doc.components.schemas.ExecuteBody!;
    expect(body.properties).toMatchObject({
      request: { $ref: "#/components/schemas/ExecutionRequest" },
      options: { $ref: "#/components/schemas/ClientOptions" },
    });
    expect(body.additionalProperties).toBe(false);
    const options = doc.components.schemas.ClientOptions! as { properties: Record<string, unknown> };
    expect(Object.keys(options.properties)).toContain("memoryLimit");
    expect(Object.keys(options.properties)).not.toContain("image");
    expect(JSON.stringify(doc)).not.toContain("__shared");
  });
});

describe("metrics", () => {
  test("renders Prometheus text with escaped labels, counters, gauges and a histogram", () => {
    const metrics = new Metrics();
    metrics.requests.inc({ route: '/x"y', status: "200" });
    metrics.requests.inc({ route: '/x"y', status: "200" });
    metrics.duration.observe({ route: "/execute" }, 0.3);
    metrics.gauge("isol8_queue_length", "Queue.", () => 3);
    const text = metrics.render();
    expect(text).toContain('isol8_http_requests_total{route="/x\\"y",status="200"} 2');
    expect(text).toContain('isol8_http_request_duration_seconds_bucket{route="/execute",le="0.25"} 0');
    expect(text).toContain('isol8_http_request_duration_seconds_bucket{route="/execute",le="0.5"} 1');
    expect(text).toContain("# TYPE isol8_queue_length gauge\nisol8_queue_length 3");
    expect(text.endsWith("\n")).toBe(true);
  });
});
