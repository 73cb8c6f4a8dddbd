import * as net from "node:net";
import * as tls from "node:tls";
import { describe, expect, test } from "vitest";
import { inspectTunnelStart, parseClientHello } from "./proxy-script.js";

/** A real ClientHello, as Node's TLS client writes it, captured by a loopback listener. */
async function clientHello(servername?: string): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const first = new Promise<Buffer>((resolve) => server.once("connection", (s) => s.once("data", (d: Buffer) => (resolve(d), s.destroy()))));
  const client = tls.connect({
    port: (server.address() as net.AddressInfo).port,
    host: "127.0.0.1",
    ...(servername ? { servername } : {}),
    rejectUnauthorized: false,
  });
  client.on("error", () => undefined);
  const data = await first;
  client.destroy();
  server.close();
  return data;
}

const target = { host: "site.test", port: 443 };
const bytes = (s: string) => Buffer.from(s, "latin1");

describe("the start of a CONNECT tunnel", () => {
  test("a ClientHello for the CONNECT host passes; another server name is cut", async () => {
    const hello = await clientHello("site.test");
    expect(parseClientHello(hello)).toEqual({ status: "tls", sni: "site.test" });
    expect(inspectTunnelStart(hello, target)).toEqual({ status: "ok", protocol: "tls" });
    expect(inspectTunnelStart(await clientHello("Site.TEST."), target)).toEqual({ status: "ok", protocol: "tls" });
    expect(inspectTunnelStart(await clientHello("other.test"), target)).toEqual({
      status: "block",
      reason: 'TLS server name "other.test" does not match the CONNECT host site.test',
    });
  });

  test("a ClientHello without a server name passes (IP-literal targets send none)", async () => {
    const hello = await clientHello(); // Node sends no SNI when none is given and the host is an IP
    expect(inspectTunnelStart(hello, target)).toEqual({ status: "ok", protocol: "tls" });
  });

  test("a ClientHello split in pieces waits for the rest", async () => {
    const hello = await clientHello("site.test");
    for (const cut of [1, 3, 5, 40, hello.length - 1]) expect(inspectTunnelStart(hello.subarray(0, cut), target)).toEqual({ status: "more" });
  });

  test("a ClientHello spread over two TLS records is reassembled", async () => {
    const hello = await clientHello("site.test");
    const body = hello.subarray(5);
    const half = 50;
    const record = (part: Buffer) => Buffer.concat([Buffer.from([0x16, 3, 1, part.length >> 8, part.length & 0xff]), part]);
    const split = Buffer.concat([record(body.subarray(0, half)), record(body.subarray(half))]);
    expect(parseClientHello(split)).toEqual({ status: "tls", sni: "site.test" });
  });

  test("plain HTTP/1.x in the tunnel passes when its Host is the target", () => {
    const t80 = { host: "site.test", port: 80 };
    expect(inspectTunnelStart(bytes("GET / HTTP/1.1\r\nHost: site.test\r\n\r\n"), t80)).toEqual({ status: "ok", protocol: "http" });
    expect(inspectTunnelStart(bytes("GET / HTTP/1.1\r\nhost: SITE.test:80\r\n\r\n"), t80)).toEqual({ status: "ok", protocol: "http" });
    expect(inspectTunnelStart(bytes("GET / HTTP/1.1\r\nHost: blocked.test\r\n\r\n"), t80)).toMatchObject({
      status: "block",
      reason: expect.stringContaining("does not match"),
    });
    expect(inspectTunnelStart(bytes("GET / HTTP/1.1\r\nHost: site"), t80)).toEqual({ status: "more" });
    expect(inspectTunnelStart(bytes("GE"), t80)).toEqual({ status: "more" });
    expect(inspectTunnelStart(bytes("GET /x HT"), t80)).toEqual({ status: "more" });
  });

  test("other protocols are cut: SSH, SMTP, a bad TLS record, binary", () => {
    for (const start of ["SSH-2.0-OpenSSH_9.2\r\n", "EHLO evil\r\n", "\x16\x02\x00\x00\x05hello", "\x00\x01\x02", "get / http/1.1\r\n"]) {
      expect(inspectTunnelStart(bytes(start), target), JSON.stringify(start)).toMatchObject({ status: "block" });
    }
  });
});
