import { Hono } from "hono";
import { describe, expect, test } from "vitest";
import type { ServerEnv } from "./env.js";
import { toHttpError } from "./errors.js";
import { sessionRoute } from "./session-routing.js";

/** An app answering the route sessionRoute reads from its headers and `?named=`, or the error body it throws. */
function app() {
  const app = new Hono<ServerEnv>();
  app.get("/", (c) => c.json(sessionRoute(c, c.req.query("named"))));
  app.onError((err, c) => {
    const error = toHttpError(err);
    return c.json(error.body(), error.status as 400);
  });
  return app;
}

describe("sessionRoute (the session routing headers)", () => {
  test("without X-Isol8-Session: the body's session, made on first use (one node, as before)", async () => {
    const response = await app().request("/?named=s1");
    expect(await response.json()).toEqual({ id: "s1", strict: false, mayCreate: true });
  });

  test("with X-Isol8-Session: strict, created only with X-Isol8-Session-Create", async () => {
    const strict = await app().request("/?named=s1", { headers: { "x-isol8-session": "s1" } });
    expect(await strict.json()).toEqual({ id: "s1", strict: true, mayCreate: false });
    const creating = await app().request("/", { headers: { "x-isol8-session": "s1", "x-isol8-session-create": "1" } });
    expect(await creating.json()).toEqual({ id: "s1", strict: true, mayCreate: true });
  });

  test("a header that is not a session id, one that disagrees with the body, and a bad create value are 400 naming the header", async () => {
    const bad = await app().request("/", { headers: { "x-isol8-session": "-nope" } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: "ISOL8_ERR_INVALID_REQUEST", field: "headers.x-isol8-session" });
    const other = await app().request("/?named=s2", { headers: { "x-isol8-session": "s1" } });
    expect(other.status).toBe(400);
    expect(await other.json()).toMatchObject({ code: "ISOL8_ERR_INVALID_REQUEST", field: "headers.x-isol8-session", error: expect.stringContaining('"s2"') });
    const create = await app().request("/", { headers: { "x-isol8-session": "s1", "x-isol8-session-create": "yes" } });
    expect(create.status).toBe(400);
    expect(await create.json()).toMatchObject({ code: "ISOL8_ERR_INVALID_REQUEST", field: "headers.x-isol8-session-create" });
  });
});
