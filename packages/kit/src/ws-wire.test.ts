import { expect, test } from "vitest";
import { EXECUTE_WS_KEY_PREFIX, keyFromSubprotocols, keySubprotocol } from "./ws-wire.js";

test("a key travels in a subprotocol as base64url (any text, no padding) and comes back", () => {
  for (const key of ["plain-key-123", "key/with+symbols=", "clé-ünïcode"]) {
    const protocol = keySubprotocol(key);
    expect(protocol.startsWith(EXECUTE_WS_KEY_PREFIX)).toBe(true);
    // Only token characters (RFC 7230): a browser sends it as a subprotocol.
    expect(protocol).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(keyFromSubprotocols(`isol8, ${protocol}`)).toBe(key);
  }
});

test("no key-carrying subprotocol, or one that is not base64url text, gives no key", () => {
  expect(keyFromSubprotocols(undefined)).toBeUndefined();
  expect(keyFromSubprotocols("isol8")).toBeUndefined();
  expect(keyFromSubprotocols(`${EXECUTE_WS_KEY_PREFIX}`)).toBeUndefined();
  expect(keyFromSubprotocols(`${EXECUTE_WS_KEY_PREFIX}_w`)).toBeUndefined();
});
