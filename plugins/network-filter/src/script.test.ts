import { describe, expect, test } from "vitest";
import * as addresses from "./proxy/addresses.js";
import * as clients from "./proxy/clients.js";
import * as destinations from "./proxy/destinations.js";
import * as forwardHttp from "./proxy/forward-http.js";
import * as forwardTunnel from "./proxy/forward-tunnel.js";
import * as replies from "./proxy/replies.js";
import * as requestLog from "./proxy/request-log.js";
import * as requests from "./proxy/requests.js";
import * as rules from "./proxy/rules.js";
import * as server from "./proxy/server.js";
import { PROXY_LIB, proxyScriptSource } from "./script.js";

const parts = { addresses, clients, destinations, forwardHttp, forwardTunnel, replies, requestLog, requests, rules, server };

describe("the proxy program's lib", () => {
  test("holds every function of every part once, under its own name (two parts exporting one name would hide one)", () => {
    const exported = Object.values(parts).flatMap((part) => Object.keys(part));
    expect(exported.length).toBeGreaterThanOrEqual(29);
    expect(new Set(exported).size).toBe(exported.length);
    expect(Object.keys(PROXY_LIB).sort()).toEqual([...exported].sort());
    for (const [name, fn] of Object.entries(PROXY_LIB)) {
      expect(typeof fn, name).toBe("function");
      expect((fn as () => unknown).name, name).toBe(name);
    }
  });

  test("the shipped source declares each function once and binds each in lib", () => {
    const source = proxyScriptSource();
    const names = Object.keys(PROXY_LIB);
    expect(names.length).toBeGreaterThanOrEqual(29);
    for (const name of names) {
      expect(source.match(new RegExp(`^(async )?function ${name}\\(`, "gm")), name).toHaveLength(1);
      expect(source, name).toContain(` ${name}: ${name}`);
    }
  });
});
