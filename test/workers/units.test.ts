import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { costOf, worstCaseNanos } from "../../src/catalog/pricing.ts";
import { hasDuplicateKeys } from "../../src/gateway/duplicate-keys.ts";
import { SseScanner } from "../../src/gateway/sse.ts";
import type { KeyGuard } from "../../src/guard/key-guard.ts";
import { checkRate } from "../../src/guard/rate.ts";
import { keyGuard } from "../../src/guard/stub.ts";
import { periodEnd, periodStart } from "../../src/lib/cycles.ts";
import { hashesEqual, hashSecret, issueKey, parseKey, randomBase62 } from "../../src/lib/keys.ts";
import { formatFemtoUsd, formatUsd, parseUsd } from "../../src/lib/money.ts";
import { chat, json, mgmt, settled, setupKey } from "./helpers.ts";

const at = (iso: string) => Date.parse(iso);
const isoOf = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

describe("cycles are UTC calendar periods", () => {
  it("day end, Monday, month end, 29 February, total", () => {
    expect(isoOf(periodStart("daily", at("2026-11-27T23:59:59.999Z")))).toBe("2026-11-27T00:00:00.000Z");
    expect(isoOf(periodEnd("daily", at("2026-11-27T23:59:59.999Z")))).toBe("2026-11-28T00:00:00.000Z");
    // 2026-11-29 is a Sunday, 2026-11-30 a Monday
    expect(isoOf(periodStart("weekly", at("2026-11-29T23:59:59Z")))).toBe("2026-11-23T00:00:00.000Z");
    expect(isoOf(periodStart("weekly", at("2026-11-30T00:00:00Z")))).toBe("2026-11-30T00:00:00.000Z");
    expect(isoOf(periodEnd("weekly", at("2026-11-30T00:00:00Z")))).toBe("2026-12-07T00:00:00.000Z");
    expect(isoOf(periodStart("monthly", at("2026-12-31T23:59:59Z")))).toBe("2026-12-01T00:00:00.000Z");
    expect(isoOf(periodEnd("monthly", at("2026-12-31T23:59:59Z")))).toBe("2027-01-01T00:00:00.000Z");
    expect(isoOf(periodStart("daily", at("2028-02-29T12:00:00Z")))).toBe("2028-02-29T00:00:00.000Z");
    expect(isoOf(periodEnd("monthly", at("2028-02-29T12:00:00Z")))).toBe("2028-03-01T00:00:00.000Z");
    expect(periodStart("total", at("2028-02-29T12:00:00Z"))).toBe(0);
    expect(periodEnd("total", at("2028-02-29T12:00:00Z"))).toBeNull();
  });

  it("the KeyGuard resets counters lazily at each boundary (injected clock)", async () => {
    const cases: [string, string, string][] = [
      ["daily", "2028-02-28T23:59:59Z", "2028-02-29T00:00:00Z"],
      ["daily", "2028-02-29T23:59:59Z", "2028-03-01T00:00:00Z"],
      ["weekly", "2026-11-29T23:59:59Z", "2026-11-30T00:00:00Z"],
      ["monthly", "2028-02-29T23:59:59Z", "2028-03-01T00:00:00Z"],
      ["monthly", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"],
    ];
    for (const [cycle, before, after] of cases) {
      const { wallet, key, id } = await setupKey({
        spend_limit: { amount: "1", cycle },
        request_limit: { count: 1, cycle },
      });
      const stub = keyGuard(env, id);
      await runInDurableObject(stub, (g: KeyGuard) => void (g.now = () => at(before)));
      // the limit was set "now" in real time: move its period to the injected clock first
      await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, {
        spend_limit: { amount: "1", cycle: "total" },
        request_limit: { count: 1, cycle: "total" },
      });
      await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, {
        spend_limit: { amount: "1", cycle },
        request_limit: { count: 1, cycle },
      });
      expect((await chat(key, { max_tokens: 5 })).status).toBe(200);
      expect((await chat(key, { max_tokens: 5 })).status).toBe(429);
      await settled(id);
      const mid = await stub.snapshot();
      expect(mid.currentRequests).toBe(1);
      expect(mid.currentSpendNanos).toBeGreaterThan(0);
      await runInDurableObject(stub, (g: KeyGuard) => void (g.now = () => at(after)));
      const next = await stub.snapshot();
      expect(next).toMatchObject({
        currentRequests: 0,
        currentSpendNanos: 0,
        totalRequests: 1,
        totalSpendNanos: mid.totalSpendNanos,
      });
      expect((await chat(key, { max_tokens: 5 })).status).toBe(200);
    }
    const total = await setupKey({ request_limit: { count: 1, cycle: "total" } });
    await chat(total.key);
    await runInDurableObject(keyGuard(env, total.id), (g: KeyGuard) => void (g.now = () => at("2099-01-01T00:00:00Z")));
    expect((await chat(total.key)).status).toBe(429);
  });

  it("changing a limit's amount keeps the period's usage; changing its cycle counts from the new period", async () => {
    const { wallet, key, id } = await setupKey({ request_limit: { count: 2, cycle: "daily" } });
    await chat(key);
    const amount = await json(
      await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { request_limit: { count: 3, cycle: "daily" } }),
      200,
    );
    expect(amount.current_requests).toBe(1);
    const cycle = await json(
      await mgmt(wallet.key, "PATCH", `/spend_keys/${id}`, { request_limit: { count: 3, cycle: "weekly" } }),
      200,
    );
    expect(cycle.current_requests).toBe(0);
    expect(cycle.total_requests).toBe(1);
  });
});

describe("money", () => {
  it("parses and formats exact decimal strings", () => {
    expect(parseUsd("50.00")).toBe(50_000_000_000);
    expect(parseUsd("0.000000001")).toBe(1);
    for (const bad of ["", "1e3", "-1", "01", "1.", ".5", "1.0000000001", "1000000", "NaN"])
      expect(parseUsd(bad)).toBeNull();
    expect(formatUsd(50_000_000_000)).toBe("50.00");
    expect(formatUsd(4_800)).toBe("0.0000048");
    expect(formatUsd(0)).toBe("0.00");
    expect(formatUsd(-1_500_000_000)).toBe("-1.50");
    expect(formatUsd(12_000_000_000n)).toBe("12.00");
    expect(formatUsd(Number.MAX_SAFE_INTEGER)).toBe("9007199.254740991");
    fc.assert(fc.property(fc.maxSafeInteger(), (n) => formatUsd(n) === formatUsd(BigInt(n))));
    expect(formatFemtoUsd(37_500n)).toBe("0.0000000000375");
    fc.assert(fc.property(fc.integer({ min: 0, max: 999_999_999_999_999 }), (n) => parseUsd(formatUsd(n)) === n));
  });

  it("charges the exact cost rounded up by less than one nano-dollar", () => {
    fc.assert(
      fc.property(
        fc.nat(1_000_000),
        fc.nat(1_000_000),
        fc.nat(1_000_000),
        fc.nat(100_000_000_000),
        fc.nat(100_000_000_000),
        (i, o, cr, pi, po) => {
          const cost = costOf(
            { input_tokens: i + cr, output_tokens: o, cache_read_tokens: cr },
            { rates: { input_mtok: pi, output_mtok: po, cache_read_mtok: 37_500_000 } },
          );
          const exact = cost.inputFemtos + cost.outputFemtos;
          const charged = BigInt(cost.totalNanos) * 1_000_000n;
          return charged >= exact && charged - exact < 1_000_000n;
        },
      ),
    );
  });

  it("costs exactly however large the figures: doubles while safe, BigInt beyond, the same answer", () => {
    // The reference: every term in BigInt, each total rounded up once from the exact fraction.
    const ceil = (n: bigint, d: bigint) => (n + d - 1n) / d;
    const tiers: Record<string, string> = { flex: "0.5", priority: "2", odd: "1.1" };
    // Usage figures up to half the safe range, so that the input total the usage reports is itself exact.
    const figure = fc.oneof(fc.nat(2_000_000), fc.nat(Math.floor(Number.MAX_SAFE_INTEGER / 2)));
    fc.assert(
      fc.property(
        figure,
        figure,
        figure,
        figure,
        figure,
        fc.nat(1_000_000),
        fc.constantFrom(undefined, ...Object.keys(tiers)),
        (i, o, cr, pi, po, ws, tier) => {
          const prices = {
            rates: {
              input_mtok: pi,
              output_mtok: po,
              cache_read_mtok: 37_500_000,
              web_searches_kcount: 10_000_000_000,
            },
            serviceTiers: tiers,
          };
          const usage = { input_tokens: i + cr, output_tokens: o, cache_read_tokens: cr, web_searches: ws };
          const [num, den] = tier ? [BigInt(Number(tiers[tier]) * 10), 10n] : [1n, 1n];
          const input = (BigInt(pi) * BigInt(i) + 37_500_000n * BigInt(cr)) * 9n;
          const output = BigInt(po) * BigInt(o) * 9n;
          const fee = 10_000_000_000n * BigInt(ws) * 9_000n;
          const cost = costOf(usage, prices, tier);
          expect(cost.inputFemtos).toBe(ceil(input * num, den * 9n));
          expect(cost.outputFemtos).toBe(ceil(output * num, den * 9n));
          expect(cost.feeFemtos).toBe(ceil(fee * num, den * 9n));
          expect(cost.totalNanos).toBe(Number(ceil((input + output + fee) * num, den * 9_000_000n)));
          const worst = {
            inputTokens: i,
            outputTokens: o,
            choices: 3,
            extraOutputTokens: cr,
            counts: {},
            serviceTier: null,
          };
          const held = ((BigInt(pi) * BigInt(i) + BigInt(po) * (3n * BigInt(o) + BigInt(cr))) * 9n) / 1n;
          expect(worstCaseNanos(worst, { rates: { input_mtok: pi, output_mtok: po } })).toBe(
            Number(ceil(held, 9_000_000n)),
          );
        },
      ),
    );
  });
});

describe("duplicate keys", () => {
  // Strings full of the characters the count must see past: quotes, backslashes, colons, braces, any code point.
  const tricky = fc.string({ unit: fc.constantFrom('"', "\\", ":", "{", "}", "a", "é", "😀", "\n", "\\u0022") });
  const value = fc.letrec((tie) => ({
    leaf: fc.oneof(tricky, fc.integer(), fc.boolean(), fc.constant(null)),
    array: fc.array(tie("node"), { maxLength: 4 }),
    object: fc.dictionary(tricky, tie("node"), { maxKeys: 4 }),
    node: fc.oneof({ depthSize: "small" }, tie("leaf"), tie("array"), tie("object")),
  })).node;

  it("finds none in any serialized value, and finds a key repeated in any object of it", () => {
    fc.assert(
      fc.property(value, tricky, fc.integer({ min: 0, max: 3 }), (v, key, where) => {
        const text = JSON.stringify({ v });
        expect(hasDuplicateKeys(text, JSON.parse(text))).toBe(false);
        // The same key twice in a new object, placed inside the value at one of several depths.
        const twice = `{${JSON.stringify(key)}:1,${JSON.stringify(key)}:2}`;
        const nested = [twice, `[${twice}]`, `{"v":${text},"w":${twice}}`, `{"a":[1,{"b":${twice}}]}`][where] as string;
        expect(hasDuplicateKeys(nested, JSON.parse(nested))).toBe(true);
      }),
    );
  });
});

describe("worst case", () => {
  it("prices a unit and its priced parts once, as the charge does (input audio seconds are audio seconds)", () => {
    const prices = { rates: { audio_hours: 360_000_000, input_audio_hours: 360_000_000 } };
    const seconds = { audio_seconds: 33, input_audio_seconds: 33 };
    const worst = {
      inputTokens: 0,
      outputTokens: 0,
      choices: 1,
      extraOutputTokens: 0,
      counts: seconds,
      serviceTier: null,
    };
    expect(costOf(seconds, prices).totalNanos).toBe(3_300_000);
    expect(worstCaseNanos(worst, prices)).toBe(3_300_000);
  });
});

describe("keys", () => {
  it("embeds the id, and any one-character change fails the checksum", () => {
    const { id, key } = issueKey("spend");
    expect(parseKey("spend", key)).toBe(id);
    expect(key.length).toBeGreaterThan(40);
    const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let refused = 0;
    for (let i = 6; i < key.length; i++) {
      if (key[i] === "_") continue;
      const c = alphabet[(alphabet.indexOf(key[i]!) + 1 + (i % 61)) % 62]!;
      expect(parseKey("spend", key.slice(0, i) + c + key.slice(i + 1))).toBeNull();
      refused++;
    }
    expect(refused).toBeGreaterThan(40);
    expect(parseKey("wallet", key)).toBeNull();
  });

  it("hashes secrets as lowercase hex SHA-256 and draws ids from the whole base62 alphabet", async () => {
    expect(await hashSecret("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(await hashSecret("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const drawn = Array.from({ length: 200 }, () => randomBase62(20));
    for (const s of drawn) expect(s).toMatch(/^[0-9A-Za-z]{20}$/);
    expect(new Set(drawn.join("")).size).toBe(62);
  });

  it("hashes from reused bytes without mixing secrets hashed at once, of any length or alphabet", async () => {
    const reference = async (s: string) =>
      [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)))]
        .map((b) => b.toString(16).padStart(2, "0"))
        .join("");
    const secrets = [
      ...Array.from({ length: 50 }, () => issueKey("spend").key),
      "pässwörd-🔑",
      "x".repeat(255),
      "y".repeat(256),
      "z".repeat(257),
      "é".repeat(200), // 400 bytes: does not fit the scratch bytes
    ];
    const hashes = await Promise.all(secrets.map((s) => hashSecret(s)));
    expect(hashes).toEqual(await Promise.all(secrets.map(reference)));
  });

  it("compares digests whole: equal only when every character is", async () => {
    const a = await hashSecret("one");
    expect(hashesEqual(a, `${a}`)).toBe(true);
    for (const i of [0, 31, 63]) {
      const flipped = a.slice(0, i) + (a[i] === "0" ? "1" : "0") + a.slice(i + 1);
      expect(hashesEqual(a, flipped)).toBe(false);
    }
    expect(hashesEqual(a, a.slice(0, 63))).toBe(false);
    expect(hashesEqual(a, await hashSecret("two"))).toBe(false);
  });
});

describe("SSE scanning", () => {
  it("forwards the same bytes however the stream is split, and meters usage events", () => {
    const events = [
      'data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}\n\n',
      'data: {"choices":[],"usage":{"prompt_tokens":3}}\n\n',
      "data: [DONE]\n\n",
    ];
    const whole = new TextEncoder().encode(events.join(""));
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: whole.length - 1 }), { maxLength: 8 }), (cuts) => {
        const seen: unknown[] = [];
        const keep = new SseScanner((e) => (seen.push(e.data), true));
        const drop = new SseScanner((e) => !((e.data as any)?.choices?.length === 0));
        const bounds = [0, ...[...cuts].sort((a, b) => a - b), whole.length];
        const out: number[] = [];
        const outDropped: number[] = [];
        for (let i = 0; i + 1 < bounds.length; i++) {
          const part = whole.subarray(bounds[i], bounds[i + 1]);
          for (const b of keep.push(part)) out.push(...b);
          for (const b of drop.push(part)) outDropped.push(...b);
        }
        expect(keep.end()).toBeNull();
        expect(new Uint8Array(out)).toEqual(whole);
        expect(new TextDecoder().decode(new Uint8Array(outDropped))).toBe(events[0]! + events[2]!);
        expect(seen).toHaveLength(2);
      }),
    );
  });
});

describe("rate bucket", () => {
  it("GCRA: burst at once, then one per interval", () => {
    let tat = 0;
    const now = 1_000_000;
    const ok = [];
    for (let i = 0; i < 5; i++) {
      const r = checkRate(tat, now, 60, 3);
      ok.push(r.allowed);
      if (r.allowed) tat = r.tat;
    }
    expect(ok).toEqual([true, true, true, false, false]);
    expect(checkRate(tat, now, 60, 3).retryAfterMs).toBe(1000);
    expect(checkRate(tat, now + 1000, 60, 3).allowed).toBe(true);
  });
});
