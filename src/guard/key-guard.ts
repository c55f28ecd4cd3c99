import { DurableObject } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { database } from "../db/client.ts";
import { requests, spendKeys, type LedgerRow, type SpendKeyRow } from "../db/schema.ts";
import { periodEnd, periodStart, visibleCurrent, type Cycle } from "../lib/cycles.ts";
import { INVALID_API_KEY_MESSAGE } from "../lib/errors.ts";
import { hashesEqual } from "../lib/keys.ts";
import { costOf, formatUsd, type Prices } from "../lib/money.ts";
import { checkRate, peekRate } from "./rate.ts";
import { applyChange, configOf, recordOf, type KeyChange, type KeyRecord } from "./record.ts";
import type {
  AdmitInput,
  AdmitResult,
  Counters,
  KeyConfig,
  KeySnapshot,
  RateState,
  SettleInput,
  SettleResult,
} from "./types.ts";

/** What a management call answers: the record now in force and the live counters. */
export interface Managed {
  record: KeyRecord;
  snapshot: KeySnapshot;
}

/** How soon after a change counters and ledger rows reach D1 (`list` is exact within 2 s). */
const FLUSH_DELAY_MS = 1_000;
/**
 * Settled ledger rows stay this long after their flush so a replayed settle stays a no-op (a settle can only
 * come from a request still within its hold's lifetime, HOLD_TTL_MS, 15 min by default).
 */
const LEDGER_RETENTION_MS = 3_600_000;
/** Ledger rows per D1 round trip: multi-row inserts of 4 (22 columns × 4 stays under D1's 100 bound values). */
const FLUSH_BATCH = 200;
const ROWS_PER_INSERT = 4;

interface HoldInfo {
  /** false for count_tokens: the hold only counts toward the in-flight cap, and closes with no charge or row */
  metered?: boolean;
  model: string;
  provider: string;
  prices: Prices | null;
  endpoint: string;
  stream: boolean;
  metadata: Record<string, string>;
}

interface HoldRow extends Record<string, SqlStorageValue> {
  request_id: string;
  amount: number;
  created_at: number;
  expires_at: number;
  info: string;
}


const freshCounters = (): Counters => ({
  spendPeriodStart: 0,
  currentSpendNanos: 0,
  totalSpendNanos: 0,
  requestPeriodStart: 0,
  currentRequests: 0,
  totalRequests: 0,
  lastUsedAt: null,
  tat: 0,
  version: 0,
});

/**
 * One per spend key: the authority for that key at request time. Every admission and settlement is one RPC,
 * and each runs to completion with no `await` between reading and writing its SQLite storage, so the
 * platform serialises them and persists the result before the reply leaves (the hard cap needs no locks).
 */
export class KeyGuard extends DurableObject<Env> {
  private record: KeyRecord | null;
  /** derived from `record`: what the hot path enforces */
  private config: KeyConfig | null;
  private counters: Counters;
  private heldNanos = 0;
  private openHolds = 0;
  private alarmPending = false;
  /** The clock; tests swap it through runInDurableObject to cross cycle boundaries. */
  now: () => number = () => Date.now();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.record = ctx.storage.kv.get<KeyRecord>("record") ?? null;
    this.config = this.record ? configOf(this.record) : null;
    this.counters = ctx.storage.kv.get<Counters>("counters") ?? freshCounters();
    // Guards written before they owned the whole record kept only the enforced configuration: rebuild the
    // record from D1's row once, with the guard's own secret hash, status and revocation winning.
    const legacy = this.record ? undefined : ctx.storage.kv.get<KeyConfig>("config");
    if (legacy) void ctx.blockConcurrencyWhile(() => this.upgrade(legacy));
    // A key nobody configured (a forged id) gets no tables: refusing it writes nothing.
    if (this.config || legacy) {
      this.ensureSchema();
      const held = ctx.storage.sql.exec<{ n: number; total: number }>("SELECT count(*) AS n, coalesce(sum(amount), 0) AS total FROM holds").one();
      this.openHolds = held.n;
      this.heldNanos = held.total;
    }
  }

  private ensureSchema(): void {
    const sqlStore = this.ctx.storage.sql;
    sqlStore.exec(`CREATE TABLE IF NOT EXISTS holds (
      request_id TEXT PRIMARY KEY, amount INTEGER NOT NULL, created_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL, info TEXT NOT NULL)`);
    sqlStore.exec(`CREATE TABLE IF NOT EXISTS ledger (
      request_id TEXT PRIMARY KEY, row TEXT NOT NULL, cost INTEGER NOT NULL,
      flushed_at INTEGER, created_at INTEGER NOT NULL)`);
    sqlStore.exec("CREATE INDEX IF NOT EXISTS ledger_flush ON ledger (flushed_at, created_at)");
  }

  // ---- management ---------------------------------------------------------------------------------
  //
  // The guard is the one writer of its key: every create / update / rotate / revoke is applied here as one
  // read-modify-write with no await inside, so racing writes are ordered by the platform and each applies only
  // the fields it sent to the record the previous one left. D1 then follows the returned record (newest wins).

  /** The key's first write; null when the id already has a record. */
  create(record: KeyRecord): Managed | null {
    if (this.record) return null;
    return this.commit(record, this.now());
  }

  /** Applies one change; null when the key is unknown here, another wallet's, or revoked (revoked is final). */
  manage(walletId: string, change: KeyChange): Managed | null {
    const prev = this.owned(walletId);
    if (!prev) return null;
    const now = this.now();
    return this.commit(applyChange(prev, change, now), now);
  }

  /** The record and exact counters, for `GET /v1/spend_keys/{id}`; null as for `manage`. */
  read(walletId: string): Managed | null {
    const record = this.owned(walletId);
    return record ? { record, snapshot: this.snapshot() } : null;
  }

  private owned(walletId: string): KeyRecord | null {
    const r = this.record;
    return r && r.walletId === walletId && r.revokedAt === null ? r : null;
  }

  private commit(next: KeyRecord, now: number): Managed {
    const prev = this.config;
    const cfg = configOf(next);
    if (!prev) this.ensureSchema();
    this.roll(now);
    const c = this.counters;
    // Changing a limit's amount keeps the period's usage; changing its cycle counts from the new period.
    if (prev?.spendLimit?.cycle !== cfg.spendLimit?.cycle) {
      c.currentSpendNanos = 0;
      c.spendPeriodStart = cfg.spendLimit ? periodStart(cfg.spendLimit.cycle, now) : 0;
    }
    if (prev?.requestLimit?.cycle !== cfg.requestLimit?.cycle) {
      c.currentRequests = 0;
      c.requestPeriodStart = cfg.requestLimit ? periodStart(cfg.requestLimit.cycle, now) : 0;
    }
    c.version++;
    const kv = this.ctx.storage.kv;
    this.ctx.storage.transactionSync(() => {
      kv.put("record", next);
      kv.put("counters", c);
      kv.delete("config");
    });
    this.record = next;
    this.config = cfg;
    this.scheduleFlush(now);
    return { record: next, snapshot: this.snapshotAt(now) };
  }

  private async upgrade(legacy: KeyConfig): Promise<void> {
    const base: SpendKeyRow | undefined = await database(this.env.DB)
      .select()
      .from(spendKeys)
      .where(sql`${spendKeys.id} = ${legacy.spendKeyId}`)
      .get();
    if (!base) return;
    const record: KeyRecord = {
      ...recordOf(base),
      keyHash: legacy.secretHash,
      status: legacy.status,
      revokedAt: legacy.revoked ? (base.revokedAt ?? legacy.version) : null,
      updatedAt: Math.max(base.updatedAt, legacy.version),
    };
    this.ctx.storage.transactionSync(() => {
      this.ctx.storage.kv.put("record", record);
      this.ctx.storage.kv.delete("config");
    });
    this.record = record;
    this.config = configOf(record);
  }

  snapshot(): KeySnapshot {
    const now = this.now();
    this.roll(now);
    return this.snapshotAt(now);
  }

  /** `GET /v1/key`: the caller proves it holds the key; it gets its configuration and live counters. */
  describe(secretHash: string): { ok: true; config: KeyConfig; snapshot: KeySnapshot } | { ok: false } {
    const now = this.now();
    const cfg = this.config;
    if (!this.authentic(cfg, secretHash, now)) return { ok: false };
    this.roll(now);
    return { ok: true, config: { ...cfg, secretHash: "" }, snapshot: this.snapshotAt(now) };
  }

  // ---- the hot path -------------------------------------------------------------------------------

  admit(input: AdmitInput): AdmitResult {
    const now = this.now();
    const cfg = this.config;
    if (!this.authentic(cfg, input.secretHash, now)) {
      return { ok: false, shape: null, code: "invalid_api_key", message: INVALID_API_KEY_MESSAGE };
    }
    const shape = cfg.requestShape;
    const refuse = (code: Extract<AdmitResult, { ok: false }>["code"], message: string, extra: Partial<Extract<AdmitResult, { ok: false }>> = {}): AdmitResult => ({
      ok: false,
      shape,
      code,
      message,
      ...extra,
    });
    if (cfg.status === "paused") return refuse("key_paused", "This spend key is paused by its owner.");
    if (cfg.requestShape !== input.routeShape) {
      const where = shape === "openai" ? "the OpenAI-shaped routes (/v1/chat/completions, /v1/responses, /v1/embeddings)" : "the Anthropic-shaped routes (/v1/messages)";
      return refuse("model_not_allowed", `This spend key has request_shape '${shape}': call ${where}.`);
    }
    const target = input.target;
    if (!target) return refuse("model_not_found", `The model '${input.model}' does not exist or is not in the gateway's catalog.`);
    if (cfg.allowedModels && !cfg.allowedModels.includes(input.model)) {
      return refuse("model_not_allowed", `This spend key may not use the model '${input.model}'.`);
    }
    if (cfg.allowedProviders && !cfg.allowedProviders.includes(target.provider)) {
      return refuse("model_not_allowed", `This spend key may not use the provider '${target.provider}'.`);
    }
    if (input.unavailable) return refuse(input.unavailable.code, input.unavailable.message);
    if (cfg.spendLimit && !target.prices) {
      return refuse("model_not_priced", `The model '${input.model}' has no price, and this spend key has a spend limit.`);
    }
    if (cfg.spendLimit && target.unbounded) return refuse("invalid_request", target.unbounded);

    this.roll(now);
    const c = this.counters;
    if (this.openHolds >= input.maxInflight) {
      return refuse("too_many_concurrent_requests", `This spend key already has ${this.openHolds} requests in flight.`, {
        details: { limit: "concurrency", count: input.maxInflight, current: this.openHolds },
        retryAfterMs: 1_000,
      });
    }
    // count_tokens (unmetered) obeys the in-flight cap and the rate, but is neither counted nor charged.
    if (input.metered && cfg.requestLimit && c.currentRequests >= cfg.requestLimit.count) {
      const { count, cycle } = cfg.requestLimit;
      const reset = untilReset(cycle, now);
      return refuse("request_limit_exceeded", `Request limit reached: ${count} requests per ${cycleWord(cycle)}.`, {
        details: { limit: "requests", count, current: c.currentRequests, cycle, resets_at: reset.resetsAt },
        terminal: true,
        ...reset.retry,
      });
    }
    const hold = input.metered ? target.worstCaseNanos : 0;
    if (input.metered && cfg.spendLimit) {
      const { nanos, cycle } = cfg.spendLimit;
      const committed = c.currentSpendNanos + this.heldNanos;
      // Spend at or over the limit (an overage) refuses everything until the cycle resets or the limit rises.
      if (c.currentSpendNanos >= nanos || committed + hold > nanos) {
        const reset = untilReset(cycle, now);
        const message =
          c.currentSpendNanos >= nanos
            ? `Spend limit reached: $${formatUsd(c.currentSpendNanos)} of $${formatUsd(nanos)} per ${cycleWord(cycle)} used.`
            : `This request's worst-case cost ($${formatUsd(hold)}${target.holdNote ? `, ${target.holdNote}` : ""}) does not fit the spend limit: $${formatUsd(Math.max(0, nanos - committed))} of $${formatUsd(nanos)} per ${cycleWord(cycle)} is left. Lower max_tokens or raise the limit.`;
        return refuse("spend_limit_exceeded", message, {
          details: {
            limit: "spend",
            amount: formatUsd(nanos),
            current: formatUsd(c.currentSpendNanos),
            cycle,
            resets_at: reset.resetsAt,
          },
          terminal: true,
          ...reset.retry,
        });
      }
    }
    let rate: RateState | null = null;
    if (cfg.rateLimit) {
      const { rpm, burst } = cfg.rateLimit;
      const check = checkRate(c.tat, now, rpm, burst);
      if (!check.allowed) {
        return refuse("rate_limit_exceeded", `Rate limit reached: ${rpm} requests per minute (burst ${burst}). Retry after ${Math.ceil(check.retryAfterMs / 1000)}s.`, {
          details: { limit: "rate", count: rpm, current: burst, resets_at: iso(now + check.retryAfterMs) },
          retryAfterMs: check.retryAfterMs,
        });
      }
      c.tat = check.tat;
      rate = { limit: burst, remaining: check.remaining, resetMs: check.resetMs };
    }

    // Every check passed: take the request, place the hold, persist — all before returning.
    if (input.metered) {
      c.currentRequests++;
      c.totalRequests++;
      c.lastUsedAt = now;
    }
    c.version++;
    const info: HoldInfo = {
      metered: input.metered,
      model: input.model,
      provider: target.provider,
      prices: target.prices,
      endpoint: input.endpoint,
      stream: input.stream,
      metadata: input.metadata,
    };
    this.ctx.storage.transactionSync(() => {
      this.ctx.storage.sql.exec(
        "INSERT INTO holds (request_id, amount, created_at, expires_at, info) VALUES (?, ?, ?, ?, ?)",
        input.requestId,
        hold,
        now,
        now + input.holdTtlMs,
        JSON.stringify(info),
      );
      this.ctx.storage.kv.put("counters", c);
    });
    this.heldNanos += hold;
    this.openHolds++;
    this.scheduleFlush(now);
    return { ok: true, shape, rate, budget: this.budget() };
  }

  /**
   * Replaces the hold with the real cost (or releases / charges it when usage is unknown) and writes the
   * ledger row. Idempotent: a second settle of the same request changes nothing.
   */
  settle(input: SettleInput): SettleResult {
    if (!this.config) return { costNanos: 0, remainingNanos: null, applied: false };
    const hold = this.ctx.storage.sql.exec<HoldRow>("SELECT * FROM holds WHERE request_id = ?", input.requestId).toArray()[0];
    if (!hold) {
      const done = this.ctx.storage.sql.exec<{ cost: number }>("SELECT cost FROM ledger WHERE request_id = ?", input.requestId).toArray()[0];
      return { costNanos: done?.cost ?? 0, remainingNanos: this.budget().remainingNanos, applied: false };
    }
    const now = this.now();
    const costNanos = this.closeHold(hold, input, now);
    this.scheduleFlush(now);
    return { costNanos, remainingNanos: this.budget().remainingNanos, applied: true };
  }

  /** Flushes counters and ledger rows to D1; charges holds that outlived their TTL (a lost settle). */
  override async alarm(): Promise<void> {
    this.alarmPending = false;
    if (!this.config) return;
    const now = this.now();
    const expired = this.ctx.storage.sql.exec<HoldRow>("SELECT * FROM holds WHERE expires_at <= ?", now).toArray();
    for (const hold of expired) {
      this.closeHold(hold, { requestId: hold.request_id, status: "aborted", usage: null, fallbackNanos: hold.amount, responseId: null, httpStatus: null, latencyMs: now - hold.created_at }, now);
    }
    await this.flush();
    const next = this.ctx.storage.sql.exec<{ at: number | null }>("SELECT min(expires_at) AS at FROM holds").one().at;
    if (next !== null && !this.alarmPending) await this.ctx.storage.setAlarm(next);
  }

  // ---- internals ----------------------------------------------------------------------------------

  private authentic(cfg: KeyConfig | null, secretHash: string, now: number): cfg is KeyConfig {
    if (!cfg) return false;
    const match = hashesEqual(cfg.secretHash, secretHash);
    return match && !cfg.revoked && (cfg.expiresAt === null || now < cfg.expiresAt);
  }

  private closeHold(hold: HoldRow, input: SettleInput, now: number): number {
    const info = JSON.parse(hold.info) as HoldInfo;
    const store = this.ctx.storage.sql;
    if (info.metered === false) {
      // count_tokens: the hold only held a place among the in-flight requests.
      store.exec("DELETE FROM holds WHERE request_id = ?", hold.request_id);
      this.heldNanos -= hold.amount;
      this.openHolds--;
      return 0;
    }
    const usage = input.usage;
    let costNanos = 0;
    let inputFemtos = 0n;
    let outputFemtos = 0n;
    if (usage && info.prices) {
      const cost = costOf(usage, info.prices);
      costNanos = cost.totalNanos;
      inputFemtos = cost.inputFemtos;
      outputFemtos = cost.outputFemtos;
    } else if (!usage) {
      // No usage arrived (cut stream, lost settle): what the gateway saw is charged, never more than the hold.
      costNanos = Math.min(hold.amount, Math.max(0, input.fallbackNanos));
    }
    this.roll(now);
    const c = this.counters;
    c.currentSpendNanos += costNanos;
    c.totalSpendNanos += costNanos;
    c.version++;
    const row: LedgerRow = {
      requestId: input.requestId,
      spendKeyId: this.config?.spendKeyId ?? "",
      walletId: this.config?.walletId ?? "",
      status: input.status,
      provider: info.provider,
      model: info.model,
      endpoint: info.endpoint,
      responseId: input.responseId,
      httpStatus: input.httpStatus,
      inputTokens: usage?.inputTokens ?? 0,
      outputTokens: usage?.outputTokens ?? 0,
      cacheReadTokens: usage?.cacheReadTokens ?? 0,
      cacheWriteTokens: usage?.cacheWriteTokens ?? 0,
      reasoningTokens: usage?.reasoningTokens ?? 0,
      inputCostFemtos: inputFemtos.toString(),
      outputCostFemtos: outputFemtos.toString(),
      costNanos,
      // The provider billed more than the hold allowed for: charged in full, flagged, and the key refuses
      // once its spend reaches the limit.
      overage: costNanos > hold.amount,
      usageKnown: usage !== null,
      stream: info.stream,
      latencyMs: input.latencyMs,
      metadata: info.metadata,
      createdAt: hold.created_at,
    };
    this.ctx.storage.transactionSync(() => {
      store.exec("DELETE FROM holds WHERE request_id = ?", hold.request_id);
      store.exec(
        "INSERT INTO ledger (request_id, row, cost, created_at) VALUES (?, ?, ?, ?)",
        input.requestId,
        JSON.stringify(row),
        costNanos,
        now,
      );
      this.ctx.storage.kv.put("counters", c);
    });
    this.heldNanos -= hold.amount;
    this.openHolds--;
    return costNanos;
  }

  /** Lazy cycle reset: compares the period of "now" with the stored one. */
  private roll(now: number): void {
    const cfg = this.config;
    const c = this.counters;
    if (cfg?.spendLimit) {
      const start = periodStart(cfg.spendLimit.cycle, now);
      if (start !== c.spendPeriodStart) {
        c.spendPeriodStart = start;
        c.currentSpendNanos = 0;
      }
    }
    if (cfg?.requestLimit) {
      const start = periodStart(cfg.requestLimit.cycle, now);
      if (start !== c.requestPeriodStart) {
        c.requestPeriodStart = start;
        c.currentRequests = 0;
      }
    }
  }

  private budget() {
    const limit = this.config?.spendLimit?.nanos ?? null;
    return {
      limitNanos: limit,
      remainingNanos: limit === null ? null : Math.max(0, limit - this.counters.currentSpendNanos - this.heldNanos),
    };
  }

  private rateState(now: number): RateState | null {
    const r = this.config?.rateLimit;
    return r ? peekRate(this.counters.tat, now, r.rpm, r.burst) : null;
  }

  private snapshotAt(now: number): KeySnapshot {
    const c = this.counters;
    const cfg = this.config;
    return {
      currentSpendNanos: visibleCurrent(cfg?.spendLimit?.cycle ?? null, c.spendPeriodStart, c.currentSpendNanos, c.totalSpendNanos, now),
      totalSpendNanos: c.totalSpendNanos,
      currentRequests: visibleCurrent(cfg?.requestLimit?.cycle ?? null, c.requestPeriodStart, c.currentRequests, c.totalRequests, now),
      totalRequests: c.totalRequests,
      spendPeriodStart: c.spendPeriodStart,
      requestPeriodStart: c.requestPeriodStart,
      heldNanos: this.heldNanos,
      remainingSpendNanos: this.budget().remainingNanos,
      openHolds: this.openHolds,
      lastUsedAt: c.lastUsedAt,
      rate: this.rateState(now),
    };
  }

  private scheduleFlush(now: number): void {
    if (this.alarmPending) return;
    this.alarmPending = true;
    void this.ctx.storage.setAlarm(now + FLUSH_DELAY_MS);
  }

  /** Absolute counters + unflushed ledger rows to D1 in one batch; replays are harmless. */
  private async flush(): Promise<void> {
    const cfg = this.config;
    if (!cfg) return;
    const store = this.ctx.storage.sql;
    const pending = store.exec<{ request_id: string; row: string }>("SELECT request_id, row FROM ledger WHERE flushed_at IS NULL ORDER BY created_at LIMIT ?", FLUSH_BATCH).toArray();
    const c = { ...this.counters };
    const db = database(this.env.DB);
    const update = db
      .update(spendKeys)
      .set({
        currentSpendNanos: c.currentSpendNanos,
        totalSpendNanos: c.totalSpendNanos,
        currentRequests: c.currentRequests,
        totalRequests: c.totalRequests,
        spendPeriodStart: c.spendPeriodStart,
        requestPeriodStart: c.requestPeriodStart,
        lastUsedAt: c.lastUsedAt,
        snapshotAt: c.version,
      })
      .where(sql`${spendKeys.id} = ${cfg.spendKeyId} AND ${spendKeys.snapshotAt} < ${c.version}`);
    const inserts = [];
    for (let i = 0; i < pending.length; i += ROWS_PER_INSERT) {
      const rows = pending.slice(i, i + ROWS_PER_INSERT).map((p) => JSON.parse(p.row) as LedgerRow);
      inserts.push(db.insert(requests).values(rows).onConflictDoNothing());
    }
    await db.batch([update, ...inserts]);
    const now = this.now();
    for (const p of pending) store.exec("UPDATE ledger SET flushed_at = ? WHERE request_id = ?", now, p.request_id);
    store.exec("DELETE FROM ledger WHERE flushed_at IS NOT NULL AND flushed_at < ?", now - LEDGER_RETENTION_MS);
    const more = store.exec<{ n: number }>("SELECT count(*) AS n FROM ledger WHERE flushed_at IS NULL").one().n;
    // A backlog (a hot key) is drained at once rather than one batch per delay.
    if (more > 0 && !this.alarmPending) {
      this.alarmPending = true;
      void this.ctx.storage.setAlarm(now);
    }
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

/** When a terminal limit's cycle resets, for `resets_at` and `retry-after` (a `total` limit never does). */
function untilReset(cycle: Cycle, now: number): { resetsAt: string | null; retry: { retryAfterMs?: number } } {
  const end = periodEnd(cycle, now);
  return end === null ? { resetsAt: null, retry: {} } : { resetsAt: iso(end), retry: { retryAfterMs: end - now } };
}

function cycleWord(cycle: Cycle): string {
  return { daily: "day", weekly: "week", monthly: "month", total: "key lifetime" }[cycle];
}
