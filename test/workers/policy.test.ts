import { describe, expect, it } from "vitest";
import { charge, freshCounters, reconfigure, roll } from "../../src/guard/counters.ts";
import { decide } from "../../src/guard/policy.ts";
import type { AdmitInput, KeyConfig } from "../../src/guard/types.ts";
import { admitInput, holdTarget } from "./helpers.ts";

/** The KeyGuard's rules as plain functions: no Durable Object, no storage, an explicit clock. */
const NOW = Date.UTC(2027, 2, 10, 12);
const config = (over: Partial<KeyConfig> = {}): KeyConfig => ({
  spendKeyId: "spk_test",
  walletId: "wal_test",
  secretHash: "a".repeat(64),
  status: "active",
  requestShape: "openai",
  allowedModels: null,
  allowedProviders: null,
  spendLimit: null,
  requestLimit: null,
  rateLimit: null,
  tokenLimit: null,
  tokensPerMinute: null,
  expiresAt: null,
  previousSecret: null,
  revoked: false,
  version: 1,
  alertThresholds: [0.5, 0.8, 0.95],
  clampOutput: true,
  ...over,
});
const input = (over: Partial<AdmitInput> = {}) => admitInput("a".repeat(64), 100, { holdTtlMs: 60_000, ...over });
const none = { count: 0, nanos: 0, tokens: 0 };
const code = (d: ReturnType<typeof decide>) => (d.ok ? "ok" : d.refusal.code);

describe("decide: the refusal order", () => {
  it("checks the key, then status, shape, catalog, scopes, then in-flight, request limit, spend, rate", () => {
    const all = config({
      status: "paused",
      allowedModels: ["other"],
      requestLimit: { count: 0 + 1, cycle: "daily" },
      spendLimit: { nanos: 50, cycle: "daily" },
      rateLimit: { rpm: 1, burst: 1 },
    });
    expect(code(decide(all, freshCounters(), none, input({ secretHash: "b".repeat(64) }), NOW))).toBe(
      "invalid_api_key",
    );
    expect(code(decide({ ...all, revoked: true }, freshCounters(), none, input(), NOW))).toBe("key_revoked");
    expect(code(decide({ ...all, expiresAt: NOW }, freshCounters(), none, input(), NOW))).toBe("key_expired");
    expect(code(decide(all, freshCounters(), none, input(), NOW))).toBe("key_paused");
    const active = { ...all, status: "active" as const };
    expect(code(decide(active, freshCounters(), none, input({ routeShape: "anthropic" }), NOW))).toBe(
      "model_not_allowed",
    );
    expect(code(decide(active, freshCounters(), none, input({ target: null }), NOW))).toBe("model_not_found");
    expect(code(decide(active, freshCounters(), none, input(), NOW))).toBe("model_not_allowed");
    const open = { ...active, allowedModels: null };
    expect(code(decide(open, freshCounters(), { count: 10, nanos: 0, tokens: 0 }, input(), NOW))).toBe(
      "too_many_concurrent_requests",
    );
    const used = { ...roll(open, freshCounters(), NOW), currentRequests: 1 };
    expect(code(decide(open, used, none, input(), NOW))).toBe("request_limit_exceeded");
    expect(code(decide({ ...open, requestLimit: null }, freshCounters(), none, input(), NOW))).toBe(
      "spend_limit_exceeded",
    );
    const fits = { ...open, requestLimit: null, spendLimit: { nanos: 1_000, cycle: "daily" as const } };
    const first = decide(fits, freshCounters(), none, input(), NOW);
    expect(first.ok && first.hold).toBe(100);
    expect(first.ok && first.budget.remainingNanos).toBe(900);
    expect(code(decide(fits, first.ok ? first.counters : freshCounters(), none, input(), NOW + 1))).toBe(
      "rate_limit_exceeded",
    );
  });

  it("a refusal by the spend limit spends no rate token; count_tokens is neither counted nor held", () => {
    const cfg = config({ spendLimit: { nanos: 50, cycle: "total" }, rateLimit: { rpm: 60, burst: 1 } });
    const c = freshCounters();
    expect(code(decide(cfg, c, none, input(), NOW))).toBe("spend_limit_exceeded");
    const count = decide(cfg, c, none, input({ metered: false }), NOW);
    expect(count.ok && count.hold).toBe(0);
    expect(count.ok && count.counters.totalRequests).toBe(0);
    // …but it took the rate token.
    expect(code(decide(cfg, count.ok ? count.counters : c, none, input({ metered: false }), NOW + 10))).toBe(
      "rate_limit_exceeded",
    );
  });

  it("spend at the limit (an overage) refuses even a zero hold", () => {
    const cfg = config({ spendLimit: { nanos: 100, cycle: "daily" } });
    const spent = charge(cfg, freshCounters(), 150, NOW);
    expect(code(decide(cfg, spent, none, input({ target: { ...holdTarget(0), prices: null } }), NOW))).toBe(
      "model_not_priced",
    );
    const priced = input({
      target: holdTarget(0),
    });
    expect(code(decide(cfg, spent, none, priced, NOW))).toBe("spend_limit_exceeded");
    // The next day the daily cycle starts again.
    expect(code(decide(cfg, spent, none, priced, NOW + 86_400_000))).toBe("ok");
  });

  it("reconfigure keeps the period's spend when the amount changes and restarts it when the cycle changes", () => {
    const daily = config({ spendLimit: { nanos: 100, cycle: "daily" } });
    const spent = charge(daily, freshCounters(), 40, NOW);
    expect(
      reconfigure(daily, config({ spendLimit: { nanos: 500, cycle: "daily" } }), spent, NOW).currentSpendNanos,
    ).toBe(40);
    const weekly = reconfigure(daily, config({ spendLimit: { nanos: 500, cycle: "weekly" } }), spent, NOW);
    expect(weekly.currentSpendNanos).toBe(0);
    expect(weekly.totalSpendNanos).toBe(40);
  });
});
