import { describe, expect, it, vi } from "vitest";
import { OutputCap, OutputStream, SecretMasker } from "./output.js";

/** Pushes every chunk, then flushes; returns everything the masker emitted. */
function streamThrough(masker: SecretMasker, chunks: readonly string[]): string {
  return chunks.map((chunk) => masker.push(chunk)).join("") + masker.flush();
}

/** Deterministic PRNG (mulberry32), so a failing property run can be reproduced. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]!;
}

function randomString(rand: () => number, alphabet: readonly string[], min: number, max: number): string {
  const length = min + Math.floor(rand() * (max - min + 1));
  return Array.from({ length }, () => pick(rand, alphabet)).join("");
}

/** Cuts text into random pieces (some empty), never inside a UTF-16 surrogate pair. */
function randomChunks(rand: () => number, text: string): string[] {
  const chars = [...text];
  const chunks: string[] = [];
  let index = 0;
  while (index < chars.length) {
    const size = Math.floor(rand() * 6); // 0..5 characters, 0 gives an empty chunk
    chunks.push(chars.slice(index, index + size).join(""));
    index += size;
  }
  return chunks;
}

describe("SecretMasker", () => {
  it("is inactive and passes text through untouched when it has no secrets", () => {
    const masker = new SecretMasker([]);
    expect(masker.active).toBe(false);
    expect(masker.push("sec")).toBe("sec");
    expect(masker.flush()).toBe("");
    expect(masker.mask("anything")).toBe("anything");
  });

  it("ignores empty secrets", () => {
    const masker = new SecretMasker(["", ""]);
    expect(masker.active).toBe(false);
    expect(masker.mask("abc")).toBe("abc");
  });

  it("is active when it has at least one non-empty secret", () => {
    expect(new SecretMasker(["", "s3cr3t"]).active).toBe(true);
  });

  it("maskAnyCase masks a secret whatever the case of its letters (a host name the proxy lowercased); mask stays exact", () => {
    const masker = new SecretMasker(["MixedCase42", "a.b"]);
    expect(masker.maskAnyCase("http://mixedcase42.test/MIXEDCASE42/MixedCase42")).toBe("http://***.test/***/***");
    expect(masker.mask("mixedcase42 MixedCase42")).toBe("mixedcase42 ***");
    // Regular-expression characters in a secret are literal in both.
    expect(masker.maskAnyCase("A.B axb")).toBe("*** axb");
    expect(new SecretMasker([]).maskAnyCase("MixedCase42")).toBe("MixedCase42");
  });

  it("masks a secret contained in a single chunk", () => {
    const masker = new SecretMasker(["hunter2"]);
    expect(masker.push("password=hunter2;\n")).toBe("password=***;\n");
    expect(masker.flush()).toBe("");
  });

  it("masks every occurrence of every secret in a chunk", () => {
    const masker = new SecretMasker(["alpha", "beta"]);
    expect(masker.push("alpha beta alpha-beta.")).toBe("*** *** ***-***.");
  });

  it("masks a chunk that is exactly the secret", () => {
    const masker = new SecretMasker(["hunter2"]);
    expect(masker.push("hunter2")).toBe("***");
  });

  it("masks a secret split across two chunks at every split point", () => {
    const secret = "hunter2";
    const text = `before ${secret} after`;
    const start = text.indexOf(secret);
    for (let cut = start; cut <= start + secret.length; cut++) {
      const masker = new SecretMasker([secret]);
      const out = streamThrough(masker, [text.slice(0, cut), text.slice(cut)]);
      expect(out, `cut at ${cut}`).toBe("before *** after");
    }
  });

  it("masks a secret split across three chunks at every pair of split points", () => {
    const secret = "correct-horse";
    const text = `x${secret}y`;
    for (let first = 0; first <= text.length; first++) {
      for (let second = first; second <= text.length; second++) {
        const masker = new SecretMasker([secret]);
        const out = streamThrough(masker, [text.slice(0, first), text.slice(first, second), text.slice(second)]);
        expect(out, `cuts at ${first} and ${second}`).toBe("x***y");
      }
    }
  });

  it("masks a secret fed one character per chunk", () => {
    const masker = new SecretMasker(["hunter2"]);
    expect(streamThrough(masker, [..."[hunter2]"])).toBe("[***]");
  });

  it("never emits a prefix of the secret before it knows the rest", () => {
    const masker = new SecretMasker(["hunter2"]);
    expect(masker.push("log: hun")).toBe("log: ");
    expect(masker.push("ter")).toBe("");
    expect(masker.push("2!")).toBe("***!");
  });

  it("emits a held-back prefix on the next push when it turns out not to be the secret", () => {
    const masker = new SecretMasker(["secret"]);
    expect(masker.push("a sec")).toBe("a ");
    expect(masker.push("ond b")).toBe("second b");
    expect(masker.flush()).toBe("");
  });

  it("emits a held-back prefix on flush when the stream ends", () => {
    const masker = new SecretMasker(["secret"]);
    expect(masker.push("a secre")).toBe("a ");
    expect(masker.flush()).toBe("secre");
  });

  it("is empty after flush, so a second flush emits nothing", () => {
    const masker = new SecretMasker(["secret"]);
    masker.push("sec");
    expect(masker.flush()).toBe("sec");
    expect(masker.flush()).toBe("");
  });

  it("keeps masking after a flush", () => {
    const masker = new SecretMasker(["secret"]);
    masker.push("x");
    masker.flush();
    expect(streamThrough(masker, ["sec", "ret"])).toBe("***");
  });

  it("masks a secret that starts inside a held-back false prefix", () => {
    // "sec" is held back, then "sec" + "secret" shows the first "sec" was not the secret.
    const masker = new SecretMasker(["secret"]);
    expect(masker.push("sec")).toBe("");
    expect(masker.push("secret")).toBe("sec***");
  });

  it("masks a self-overlapping secret at its leftmost occurrence, as mask() does", () => {
    const masker = new SecretMasker(["abab"]);
    expect(streamThrough(masker, ["ab", "aba", "b"])).toBe("***ab");
    expect(new SecretMasker(["abab"]).mask("ababab")).toBe("***ab");
  });

  it("masks a self-overlapping secret after a false start that overlaps it", () => {
    const masker = new SecretMasker(["aab"]);
    expect(streamThrough(masker, ["a", "a", "a", "b"])).toBe("a***");
  });

  it("holds back only the longest tail that can still become a secret", () => {
    const masker = new SecretMasker(["xyz1", "yz23"]);
    // "yz" is a prefix of "yz23" and longer than "z" (no prefix) — held back, "x" emitted.
    expect(masker.push("axyz")).toBe("a");
    expect(masker.push("23")).toBe("x***");
  });

  it("does not lose or duplicate text across many pushes of non-secret text that resembles a secret", () => {
    const masker = new SecretMasker(["password"]);
    const chunks = ["pass", "port ", "p", "a", "s", "t", "a ", "passw", "ord", "passwor"];
    expect(streamThrough(masker, chunks)).toBe("passport pasta ***passwor");
  });

  it("masks the longest of nested secrets that start at the same place", () => {
    const masker = new SecretMasker(["pass", "password"]);
    expect(masker.push("my password!")).toBe("my ***!");
  });

  it("masks the longest of nested secrets when the shorter is inside the longer", () => {
    const masker = new SecretMasker(["word", "password"]);
    expect(masker.mask("password word")).toBe("*** ***");
  });

  it("masks the leftmost of two secrets that overlap at different positions", () => {
    // Regex semantics: the match that starts first wins; the rest of the text is scanned after it.
    expect(new SecretMasker(["abc", "bcd"]).mask("abcd")).toBe("***d");
    expect(new SecretMasker(["bcd", "abc"]).mask("abcd")).toBe("***d");
  });

  it("masks the longest nested secret whole when the text arrives in one chunk, whatever the order given", () => {
    expect(new SecretMasker(["abc", "abcdef"]).push("xabcdefy")).toBe("x***y");
    expect(new SecretMasker(["abcdef", "abc"]).push("xabcdefy")).toBe("x***y");
  });

  it("masks a shorter secret that was held back as the start of a longer one when the stream ends", () => {
    const masker = new SecretMasker(["abc", "abcdef"]);
    expect(masker.push("xabc") + masker.flush()).toBe("x***");
  });

  // although a longer secret that starts with it may still complete in the next chunk.
  it("masks a longer secret whole when a shorter secret it starts with ends a chunk", () => {
    const masker = new SecretMasker(["abc", "abcdef"]);
    expect(streamThrough(masker, ["xabc", "defy"])).toBe("x***y");
  });

  it("masks a longer secret whole when a shorter secret inside it ends a chunk", () => {
    const masker = new SecretMasker(["bc", "abcd"]);
    expect(streamThrough(masker, ["abc", "d"])).toBe("***");
  });

  it("masks nested secrets the same way when they arrive in one chunk or many, for every split of the text", () => {
    const secrets = ["abc", "abcdef", "cd"];
    const text = "0abcdef1abc2abcd3cd4";
    const expected = new SecretMasker(secrets).mask(text);
    for (let cut = 0; cut <= text.length; cut++) {
      const out = streamThrough(new SecretMasker(secrets), [text.slice(0, cut), text.slice(cut)]);
      expect(out, `cut at ${cut}`).toBe(expected);
    }
  });

  it("treats regular-expression characters in a secret literally", () => {
    const masker = new SecretMasker(["a.b*c(d)|[e]\\f$^{1}+?"]);
    expect(masker.mask("aXbbbcd")).toBe("aXbbbcd");
    expect(masker.mask("<a.b*c(d)|[e]\\f$^{1}+?>")).toBe("<***>");
  });

  it("masks secrets made of multi-byte characters and emoji", () => {
    const masker = new SecretMasker(["mötör😀"]);
    expect(streamThrough(masker, ["a mö", "tör\uD83D", "\uDE00 b"])).toBe("a *** b");
  });

  it("mask() replaces every secret in a whole string without touching the stream state", () => {
    const masker = new SecretMasker(["k1", "key-2"]);
    expect(masker.push("held k")).toBe("held ");
    expect(masker.mask("k1 and key-2 and k")).toBe("*** and *** and k");
    expect(masker.push("1")).toBe("***");
  });

  it("deduplicates secrets given more than once", () => {
    expect(new SecretMasker(["tok", "tok"]).mask("tok tok")).toBe("*** ***");
  });

  it("emits the whole text with secrets replaced by ***, for random text, secrets and chunking", () => {
    // Each secret is drawn from its own alphabet and the filler from yet another, so secrets never
    // overlap, nest, or form at a seam: the expected output is exact.
    const secretAlphabets = [
      ["A", "B", "C"],
      ["x", "y", "z"],
      ["é", "€", "😀"],
      ["1", "2", "3"],
    ];
    const fillerAlphabet = [" ", "\n", "q", "ß", "-", "ü", "🎉"];
    for (let seed = 1; seed <= 500; seed++) {
      const rand = random(seed);
      const secrets = secretAlphabets.slice(0, 1 + Math.floor(rand() * 4)).map((alphabet) => randomString(rand, alphabet, 1, 8));
      let text = "";
      let expected = "";
      for (let i = 0; i < 12; i++) {
        if (rand() < 0.4) {
          text += pick(rand, secrets);
          expected += "***";
        } else {
          const filler = randomString(rand, fillerAlphabet, 0, 6);
          text += filler;
          expected += filler;
        }
      }
      const out = streamThrough(new SecretMasker(secrets), randomChunks(rand, text));
      expect(out, `seed ${seed}: ${JSON.stringify({ secrets, text })}`).toBe(expected);
    }
  });

  it("emits the same text as mask() for random text with nested and overlapping secrets and random chunking", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rand = random(seed);
      const base = randomString(rand, ["a", "b", "c"], 3, 7);
      // A secret, a longer one that starts with it, and one inside it: all nested.
      const secrets = [base, `${base}${randomString(rand, ["a", "b", "c"], 1, 3)}`, base.slice(1, 3)];
      const text = Array.from({ length: 8 }, () => (rand() < 0.5 ? pick(rand, secrets) : randomString(rand, ["a", "b", "c", "-"], 0, 4))).join("");
      const out = streamThrough(new SecretMasker(secrets), randomChunks(rand, text));
      expect(out, `seed ${seed}: ${JSON.stringify({ secrets, text })}`).toBe(new SecretMasker(secrets).mask(text));
    }
  });
});

describe("OutputCap", () => {
  it("lets text under the limit through unchanged", () => {
    const cap = new OutputCap(10);
    expect(cap.take("hello")).toBe("hello");
    expect(cap.truncated).toBe(false);
  });

  it("lets text of exactly the limit through without marking it truncated", () => {
    const cap = new OutputCap(6);
    expect(cap.take("aé€")).toBe("aé€"); // 1 + 2 + 3 bytes
    expect(cap.truncated).toBe(false);
  });

  it("marks truncated on the first byte past an exactly-filled limit", () => {
    const cap = new OutputCap(5);
    expect(cap.take("hello")).toBe("hello");
    expect(cap.take("!")).toBe("");
    expect(cap.truncated).toBe(true);
  });

  it("counts the limit in UTF-8 bytes across several takes", () => {
    const cap = new OutputCap(7);
    expect(cap.take("é€")).toBe("é€"); // 5 bytes
    expect(cap.take("ab")).toBe("ab"); // 7 bytes
    expect(cap.truncated).toBe(false);
    expect(cap.take("c")).toBe("");
    expect(cap.truncated).toBe(true);
  });

  it("cuts ASCII text at the byte limit", () => {
    const cap = new OutputCap(3);
    expect(cap.take("abcdef")).toBe("abc");
    expect(cap.truncated).toBe(true);
  });

  it("does not split a two-byte character ('é') at the limit", () => {
    const cap = new OutputCap(2);
    expect(cap.take("aé")).toBe("a");
    expect(cap.truncated).toBe(true);
  });

  it("does not split a three-byte character ('€') at the limit", () => {
    expect(new OutputCap(3).take("a€")).toBe("a");
    expect(new OutputCap(2).take("a€")).toBe("a");
    expect(new OutputCap(4).take("a€b")).toBe("a€");
  });

  it("does not split a four-byte emoji at the limit", () => {
    for (const limit of [1, 2, 3]) expect(new OutputCap(limit).take("😀")).toBe("");
    expect(new OutputCap(4).take("😀😀")).toBe("😀");
    expect(new OutputCap(7).take("😀😀")).toBe("😀");
  });

  it("never returns more bytes than the limit, and always a prefix of the text, for every limit", () => {
    const text = "aé€😀b€é😀";
    const total = Buffer.byteLength(text);
    for (let limit = 0; limit <= total + 1; limit++) {
      const kept = new OutputCap(limit).take(text);
      expect(Buffer.byteLength(kept), `limit ${limit}`).toBeLessThanOrEqual(limit);
      expect(text.startsWith(kept), `limit ${limit}`).toBe(true);
      expect(kept).not.toContain("\uFFFD");
      // Whole characters only: the next character would not have fitted.
      const next = [...text.slice(kept.length)][0];
      if (next !== undefined) expect(Buffer.byteLength(kept + next), `limit ${limit}`).toBeGreaterThan(limit);
    }
  });

  it("returns nothing once truncated, even for text that would fit a fresh cap", () => {
    const cap = new OutputCap(4);
    expect(cap.take("abcdef")).toBe("abcd");
    expect(cap.take("")).toBe("");
    expect(cap.take("x")).toBe("");
    expect(cap.truncated).toBe(true);
  });

  it("passes empty text through without marking truncated", () => {
    const cap = new OutputCap(0);
    expect(cap.take("")).toBe("");
    expect(cap.truncated).toBe(false);
  });

  it("with a zero limit, lets nothing through and marks truncated", () => {
    const cap = new OutputCap(0);
    expect(cap.take("a")).toBe("");
    expect(cap.truncated).toBe(true);
  });
});

describe("OutputStream", () => {
  it("decodes a UTF-8 character split across two Buffer chunks", () => {
    const stream = new OutputStream([], 100);
    const bytes = Buffer.from("é");
    expect(stream.push(bytes.subarray(0, 1))).toBe("");
    expect(stream.push(bytes.subarray(1))).toBe("é");
  });

  it("decodes an emoji fed one byte per chunk", () => {
    const stream = new OutputStream([], 100);
    const out = [...Buffer.from("a😀b")].map((byte) => stream.push(Buffer.from([byte]))).join("") + stream.end();
    expect(out).toBe("a😀b");
  });

  it("decodes text cut at every byte into the original text", () => {
    const text = "héllo € 😀 wörld";
    const bytes = Buffer.from(text);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const stream = new OutputStream([], 1000);
      const out = stream.push(bytes.subarray(0, cut)) + stream.push(bytes.subarray(cut)) + stream.end();
      expect(out, `cut at byte ${cut}`).toBe(text);
    }
  });

  it("emits an incomplete character at the end as U+FFFD", () => {
    const stream = new OutputStream([], 100);
    expect(stream.push(Buffer.from([0x61, 0xe2, 0x82]))).toBe("a");
    expect(stream.end()).toBe("\uFFFD");
  });

  it("masks a secret whose bytes are split across chunks", () => {
    const stream = new OutputStream(["pässwörd"], 1000);
    const bytes = Buffer.from("x=pässwörd;");
    let out = "";
    for (let i = 0; i < bytes.length; i += 3) out += stream.push(bytes.subarray(i, i + 3));
    out += stream.end();
    expect(out).toBe("x=***;");
  });

  it("emits text held back by the masker when the stream ends", () => {
    const stream = new OutputStream(["secret"], 100);
    expect(stream.push(Buffer.from("the sec"))).toBe("the ");
    expect(stream.end()).toBe("sec");
  });

  it("masks secrets before the cap, so no part of a secret leaks at the cut", () => {
    const stream = new OutputStream(["hunter2"], 6);
    const out = stream.push(Buffer.from("pw hunter2 end")) + stream.end();
    expect(out).toBe("pw ***");
    expect(out).not.toContain("h");
    expect(stream.truncated).toBe(true);
  });

  it("counts the mask, not the secret, against the cap", () => {
    const stream = new OutputStream(["a-very-long-secret"], 5);
    expect(stream.push(Buffer.from("a-very-long-secret!"))).toBe("***!");
    expect(stream.truncated).toBe(false);
  });

  it("applies the rewrite function to masked text", () => {
    const rewrite = vi.fn((text: string) => text.toUpperCase());
    const stream = new OutputStream(["hunter2"], 100, rewrite);
    expect(stream.push(Buffer.from("pw hunter2 ok"))).toBe("PW *** OK");
    expect(rewrite).toHaveBeenCalledWith("pw *** ok");
  });

  it("applies the rewrite before the cap, so rewritten text counts against it", () => {
    const stream = new OutputStream([], 4, (text) => text + text);
    expect(stream.push(Buffer.from("abc"))).toBe("abca");
    expect(stream.truncated).toBe(true);
  });

  it("does not call the rewrite function for empty text", () => {
    const rewrite = vi.fn((text: string) => text);
    const stream = new OutputStream(["secret"], 100, rewrite);
    expect(stream.push(Buffer.from("sec"))).toBe(""); // held back by the masker
    expect(stream.push(Buffer.from([0xc3]))).toBe(""); // half a character
    expect(rewrite).not.toHaveBeenCalled();
  });

  it("returns nothing for further input once truncated, without rewriting it", () => {
    const rewrite = vi.fn((text: string) => text);
    const stream = new OutputStream([], 3, rewrite);
    expect(stream.push(Buffer.from("abcdef"))).toBe("abc");
    expect(stream.truncated).toBe(true);
    rewrite.mockClear();
    expect(stream.push(Buffer.from("more"))).toBe("");
    expect(stream.end()).toBe("");
    expect(rewrite).not.toHaveBeenCalled();
  });

  it("is not truncated when the output fits exactly", () => {
    const stream = new OutputStream([], 4);
    expect(stream.push(Buffer.from("ab")) + stream.push(Buffer.from("cd")) + stream.end()).toBe("abcd");
    expect(stream.truncated).toBe(false);
  });

  it("cuts at a character boundary when the cap falls inside a multi-byte character", () => {
    const stream = new OutputStream([], 3);
    expect(stream.push(Buffer.from("a€"))).toBe("a");
    expect(stream.truncated).toBe(true);
  });
});

describe("OutputStream in latin1 (raw bytes: outputEncoding base64)", () => {
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

  it("keeps every byte, even a non-UTF-8 one split across chunks", () => {
    const stream = new OutputStream([], 1024, undefined, "latin1");
    const text = stream.push(bytes.subarray(0, 129)) + stream.push(bytes.subarray(129)) + stream.end();
    expect(Buffer.from(text, "latin1")).toEqual(bytes);
  });

  it("masks a secret's UTF-8 bytes, also split across chunks", () => {
    const secret = "p\u00e4ss";
    const stream = new OutputStream([secret], 1024, undefined, "latin1");
    const written = Buffer.concat([Buffer.from([0xff]), Buffer.from(secret), Buffer.from([0xfe])]);
    const text = stream.push(written.subarray(0, 3)) + stream.push(written.subarray(3)) + stream.end();
    expect(Buffer.from(text, "latin1")).toEqual(Buffer.concat([Buffer.from([0xff]), Buffer.from("***"), Buffer.from([0xfe])]));
  });

  it("counts the cap in bytes and cuts at the exact byte", () => {
    const stream = new OutputStream([], 200, undefined, "latin1");
    const text = stream.push(bytes) + stream.end();
    expect(Buffer.from(text, "latin1")).toEqual(bytes.subarray(0, 200));
    expect(stream.truncated).toBe(true);
  });
});
