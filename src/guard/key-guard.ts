import { DurableObject } from "cloudflare:workers";
import { applyChange, configOf, type KeyChange, type KeyRecord, storedRecord } from "../keys/record.ts";
import type { WebhookEvent } from "../webhooks/events.ts";
import { expiryDue, expiryReached, type GuardView, limitReached, managementEvents, thresholdEvent } from "./alerts.ts";
import type { BooksMessage, BooksReceipt } from "./books.ts";
import {
  type AncestorState,
  type Family,
  type FamilyRefusal,
  familyConflict,
  type MintRequest,
  type Report,
} from "./children.ts";
import { charge, freshCounters, reachedThresholds, reconfigure, snapshot } from "./counters.ts";
import { childRefusal, GuardFamily } from "./family.ts";
import { GuardBooks, type KeyState, nextWake, RETRY_MS } from "./hand-over.ts";
import { GuardTables, type HoldRow } from "./ledger.ts";
import { countedTokens, heldRun, holdInfo, infoOf, lapsedSettle, ledgerRowFor } from "./ledger-row.ts";
import { GuardOutbox } from "./outbox.ts";
import { authentic, decide } from "./policy.ts";
import { type AdmitRun, GuardRuns } from "./runs.ts";
import type {
  AdmitInput,
  AdmitResult,
  Counters,
  Described,
  GuardState,
  HeldTotals,
  KeyConfig,
  KeySnapshot,
  Managed,
  SettleInput,
  SettleResult,
} from "./types.ts";

/** How soon after a change the guard hands it to the bookkeeping queue (it lands in D1 about a second later). */
const FLUSH_DELAY_MS = 1_000;

/**
 * One per spend key: the authority for that key. Every admission, settlement and management change is one
 * RPC that runs to completion with no `await` between reading and writing its SQLite storage, so the platform
 * serialises them; each applies its writes in one `transactionSync` and only then updates the in-memory copy,
 * so a throw leaves nothing half done. The rules themselves are pure functions in policy.ts; the child-key
 * machinery is family.ts, the runs runs.ts, the bookkeeping hand-over hand-over.ts, each holding to the same rule.
 */
export class KeyGuard extends DurableObject<Env> {
  private record: KeyRecord | null;
  /** derived from `record`: what the hot path enforces */
  private config: KeyConfig | null;
  private counters: Counters;
  private held: HeldTotals = { count: 0, nanos: 0, tokens: 0 };
  private readonly tables: GuardTables;
  private readonly outbox: GuardOutbox;
  private readonly runs: GuardRuns;
  private alarmPending = false;
  private readonly books: GuardBooks;
  /** its place among child keys: ancestors' state, children's carves and reports (family.ts) */
  private readonly family: GuardFamily;
  /** The clock; tests swap it through runInDurableObject to cross cycle boundaries. */
  now: () => number = () => Date.now();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.tables = new GuardTables(ctx.storage.sql);
    this.outbox = new GuardOutbox(ctx.storage.sql);
    this.runs = new GuardRuns(ctx.storage.sql);
    const stored = ctx.storage.kv.get<Parameters<typeof storedRecord>[0]>("record");
    this.record = stored ? storedRecord(stored) : null;
    this.config = this.record ? configOf(this.record) : null;
    // Counters stored before a field existed (the token counters) take its fresh value.
    this.counters = { ...freshCounters(), ...ctx.storage.kv.get<Counters>("counters") };
    this.family = new GuardFamily(ctx.storage, env, {
      now: () => this.now(),
      record: () => this.record,
      config: () => this.config,
      counters: () => this.counters,
      held: () => this.held,
      countersWritten: (counters) => {
        this.counters = counters;
      },
      scheduleFlush: (now) => this.scheduleFlush(now),
      endGrace: (record, now) => {
        const change: KeyChange = { kind: "update", fields: {} };
        const next = { ...applyChange(record, change, now), previousKeyHash: null, previousKeyExpiresAt: null };
        this.commit(next, change, record, now);
      },
      revoke: (record, now, at = now) => {
        const next = { ...applyChange(record, { kind: "revoke" }, now), revokedAt: at };
        this.commit(next, { kind: "revoke" }, record, now);
      },
    });
    this.books = new GuardBooks(ctx.storage, this.tables, this.outbox);
    // A key nobody configured (a forged id) gets no tables: refusing it writes nothing.
    if (this.config) {
      this.openTables();
      this.held = this.tables.heldTotals();
    }
  }

  // ---- management: the guard is the one writer of its key. Every create / update / rotate / revoke is one
  // read-modify-write, so racing writes are ordered by the platform and each applies only the fields it sent
  // to the record the previous one left. The change's webhook events go in the outbox in the same transaction,
  // and D1 follows the record through the bookkeeping queue (newest version wins).

  /** The key's first write; null when the id already has a record. A child key comes with its family. */
  create(record: KeyRecord, family?: Family): Managed | null {
    if (this.record || this.ctx.storage.kv.get("abandoned")) return null;
    const now = this.now();
    if (family) this.family.adopt(family);
    const managed = this.commit(record, "create", null, now);
    if (!family) return managed;
    this.family.follow(now);
    return { record: this.record ?? managed.record, snapshot: this.snapshot() };
  }

  /**
   * The parent asks after a reservation whose creation it never heard of: a key created answers so; one never
   * created is sealed, so that a create arriving later fails and the carve can go back.
   */
  sealIfUncreated(): "created" | "sealed" {
    if (this.record) return "created";
    this.ctx.storage.kv.put("abandoned", true);
    return "sealed";
  }

  /**
   * Applies one change; null when the key is unknown here, another wallet's, or revoked (revoked is final); a
   * refusal when the key's family forbids it (children.ts › familyConflict). A change its descendants must learn
   * (pause, resume, revoke, expiry, delegation) is marked owed to them: `propagate` then pushes it.
   */
  manage(walletId: string, change: KeyChange): (Managed & { previous: KeyRecord }) | { refused: FamilyRefusal } | null {
    this.family.expire(this.now());
    const prev = this.owned(walletId);
    if (!prev) return null;
    if (change.kind === "update") {
      const refused = familyConflict(prev, this.family.current, change.fields);
      if (refused) return { refused };
    }
    // Under a paused ancestor a rotation gives no grace, as under the key's own pause (record.ts › applyChange).
    if (change.kind === "rotate" && this.family.pausedByAncestor()) change = { ...change, graceMs: 0 };
    const now = this.now();
    const managed = { ...this.commit(applyChange(prev, change, now), change, prev, now), previous: prev };
    const r = managed.record;
    const delegation =
      r.delegationMaxDepth !== prev.delegationMaxDepth || r.delegationMaxChildren !== prev.delegationMaxChildren;
    if (r.status !== prev.status || r.revokedAt !== prev.revokedAt || r.expiresAt !== prev.expiresAt || delegation) {
      this.family.keyChanged(now);
    }
    return managed;
  }

  /** The record and exact counters, for `GET /v1/spend_keys/{id}`; null as for `manage`. */
  read(walletId: string): Managed | null {
    this.family.expire(this.now());
    const record = this.owned(walletId);
    return record ? { record, snapshot: this.snapshot() } : null;
  }

  snapshot(): KeySnapshot {
    const now = this.now();
    const s = snapshot(this.config, this.counters, this.held, now);
    const carved = this.family.carved(now);
    const remaining = s.remainingSpendNanos === null ? null : Math.max(0, s.remainingSpendNanos - carved);
    return { ...s, carvedNanos: carved, remainingSpendNanos: remaining };
  }

  /**
   * `GET /v1/key`: the caller proves it holds the key; it gets its record (no hash) and live counters, and the
   * figures of `run` when asked (null when the key has no `run_limit`: its runs are not tracked).
   */
  describe(secretHash: string, run?: string): Described {
    const now = this.now();
    this.family.expire(now);
    if (!this.record || !authentic(this.config, secretHash, now)) return { ok: false };
    const stop = this.family.stopped(secretHash, now);
    if (stop && stop.code !== "key_paused") return { ok: false };
    const config = { ...this.config, secretHash: "" };
    const described = {
      ok: true as const,
      record: { ...this.record, keyHash: "" },
      config,
      snapshot: this.snapshot(),
      ...(stop ? { stoppedBy: stop.message } : {}),
    };
    if (run === undefined) return described;
    return { ...described, run: config.runLimit ? this.runs.read(run, now) : null };
  }

  inspect(): GuardState {
    return {
      record: this.record,
      config: this.config,
      counters: this.counters,
      held: this.held,
      ledger: this.config ? this.tables.ledgerRows() : [],
      unconfirmed: this.config ? this.books.unconfirmed(this.keyState(this.config)) : 0,
      runs: this.config ? this.runs.count() : 0,
    };
  }

  private owned(walletId: string): KeyRecord | null {
    const r = this.record;
    return r && r.walletId === walletId && r.revokedAt === null ? r : null;
  }

  private commit(next: KeyRecord, change: KeyChange | "create", prev: KeyRecord | null, now: number): Managed {
    const cfg = configOf(next);
    if (!this.config) this.openTables();
    const counters = reconfigure(this.config, cfg, this.counters, now);
    const events = managementEvents({ record: next, config: cfg, counters, held: this.held }, change, prev, now);
    const kv = this.ctx.storage.kv;
    this.ctx.storage.transactionSync(() => {
      kv.put("record", next);
      kv.put("counters", counters);
      for (const event of events) this.outbox.add(event, now);
    });
    this.record = next;
    this.config = cfg;
    this.counters = counters;
    this.scheduleFlush(now);
    return { record: next, snapshot: this.snapshot() };
  }

  private openTables(): void {
    for (const t of [this.tables, this.outbox, this.runs]) t.ensureSchema();
  }

  // ---- the hot path -------------------------------------------------------------------------------

  admit(input: AdmitInput): AdmitResult {
    const now = this.now();
    this.family.expire(now);
    const stop = this.family.stopped(input.secretHash, now);
    if (stop && this.config) {
      const terminal = stop.code !== "key_paused";
      const shape = this.config.requestShape;
      return { ok: false, shape, walletId: this.config.walletId, ...stop, ...(terminal ? { terminal } : {}) };
    }
    // The children's carves count against the spend limit as holds that never settle within the cycle.
    const held = { ...this.held, nanos: this.held.nanos + this.family.carved(now) };
    const run = this.runOf(input, now);
    const decision = decide(this.config, this.counters, held, input, now, run);
    if (!decision.ok) {
      const view = this.view();
      // A child reaching its carve raises limit_reached as any key reaching its spend limit does.
      this.raise(view && limitReached(view, decision.refusal, now), now);
      const refusal = childRefusal(decision.refusal, this.config);
      return this.config ? { ...refusal, walletId: this.config.walletId } : refusal;
    }
    const { counters, hold, holdTokens, rate, target, shape } = decision;
    this.ctx.storage.transactionSync(() => {
      const amounts = { nanos: hold, tokens: holdTokens };
      this.tables.placeHold(input.requestId, amounts, now, input.holdTtlMs, holdInfo(input, target, run !== null));
      if (run) this.runs.admit(run, hold, now);
      this.ctx.storage.kv.put("counters", counters);
    });
    this.counters = counters;
    this.held = { count: this.held.count + 1, nanos: this.held.nanos + hold, tokens: this.held.tokens + holdTokens };
    this.scheduleFlush(now);
    const clamped = decision.clampedOutputTokens;
    return {
      ok: true,
      shape,
      walletId: this.config?.walletId ?? "",
      rate,
      budget: decision.budget,
      holdNanos: hold,
      holdTokens,
      ...(clamped === undefined ? {} : { clampedOutputTokens: clamped }),
    };
  }

  /**
   * Replaces the hold with the real cost (or releases / charges it when usage is unknown) and writes the
   * ledger row. Idempotent: a second settle of the same request changes nothing.
   */
  settle(input: SettleInput): SettleResult {
    const cfg = this.config;
    const now = this.now();
    const costNanos = cfg ? this.closeHold(cfg, input.requestId, () => input, now) : null;
    if (costNanos !== null) {
      this.scheduleFlush(now);
      this.family.refreshReport(now);
    }
    // A replay (the request was settled before) changes nothing and answers the cost first charged.
    const charged = costNanos ?? (cfg ? (this.tables.settledCost(input.requestId) ?? 0) : 0);
    return { costNanos: charged, remainingNanos: this.snapshot().remainingSpendNanos, applied: costNanos !== null };
  }

  /**
   * Charges holds that outlived their TTL (a lost settle), raises the expiry event when due, and hands what D1
   * has not confirmed to the bookkeeping queue; wakes again until D1 confirms it, for the next hold to expire,
   * and for the key's expiry.
   */
  override async alarm(): Promise<void> {
    this.alarmPending = false;
    const cfg = this.config;
    if (!cfg) return;
    const now = this.now();
    this.family.expire(now);
    for (const id of this.tables.expiredHoldIds(now)) this.closeHold(cfg, id, (h) => lapsedSettle(h, now), now);
    this.runs.dropEnded(now);
    this.family.refreshReport(now);
    const family = await Promise.all([this.family.checkMinting(now), this.family.propagate()]).then(
      () => null,
      () => now + RETRY_MS,
    );
    const view = this.view();
    this.raise(view && expiryReached(view, now), now);
    const send = (m: BooksMessage) => this.env.LEDGER.send(m, { contentType: "json" });
    const handed = await this.books.handOver(this.keyState(cfg), send, this.now);
    const owed = this.books.unconfirmed(this.keyState(cfg)) > 0;
    const expiries = [
      this.tables.nextExpiry(),
      this.record && expiryDue(this.record, this.counters),
      this.runs.nextEnd(),
      family,
      ...this.family.wakes(cfg, now),
    ];
    const at = nextWake(handed, owed, expiries, this.now());
    if (at === null) return;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || at < current) await this.ctx.storage.setAlarm(at);
  }

  /** The bookkeeping consumer wrote a message of this guard's to D1: what it carried is no longer owed. */
  confirm(receipt: BooksReceipt): void {
    if (this.config) this.books.confirm(receipt, this.now());
  }

  private keyState(cfg: KeyConfig): KeyState {
    return { keyId: cfg.spendKeyId, walletId: cfg.walletId, record: this.record, counters: this.counters };
  }

  // ---- child keys: the RPCs parents, children and the Worker call on each other; the work is in family.ts ----

  /**
   * Reserves a child's carve in this key's cycle, if the key (authenticated by its secret) may mint it: the child's
   * fields no looser than this key's, its delegation, depth and live children within bounds, and the carve within
   * `limit − spend − holds − carves`. Answers the child's fields and family; the Worker then creates the child.
   */
  mintChild(secretHash: string, req: MintRequest) {
    return this.family.mint(secretHash, req);
  }

  /** Gives back a reservation whose child was never created (its create failed). */
  cancelChild(childId: string): void {
    this.family.cancel(childId);
  }

  /**
   * An ancestor's new state (pushed by the parent, newest version per ancestor wins). A revoked ancestor revokes
   * this key too; then the state goes on to this key's own children, and this key's report (if it has ended) to
   * its parent — both awaited, so the caller's answer means the whole subtree has it.
   */
  ancestorsChanged(pushed: Record<string, AncestorState>): Promise<void> {
    return this.family.ancestorsChanged(pushed);
  }

  /** The Worker created the child this key reserved for: the reservation no longer waits to be checked. */
  childCreated(childId: string): void {
    this.family.created(childId);
  }

  /** A child's report (idempotent: a replay or an older one changes nothing). */
  childReport(childId: string, report: Report): void {
    this.family.childReport(childId, report);
  }

  /**
   * Pushes what this key owes: its ancestors' state to its live children (each passes it on before answering),
   * then its report to its parent. Throws when one did not answer; the alarm tries again.
   */
  propagate(): Promise<void> {
    return this.family.propagate();
  }

  /** The key's family and what its children take of its cycle now (tests, and the management API's reads). */
  familyState(): Family & { carvedNanos: number } {
    return this.family.state();
  }

  // ---- internals ----------------------------------------------------------------------------------

  /**
   * The request's run as admission weighs it: only a metered request naming a run, on a key with a `run_limit`
   * (without one, the run id only tags the ledger row). Reads only; `admit` writes it with the hold.
   */
  private runOf(input: AdmitInput, now: number): AdmitRun | null {
    if (input.run === undefined || !input.metered || !this.config?.runLimit) return null;
    return this.runs.forAdmission(input.run, now);
  }

  /**
   * Closes an open hold (null when none is open under that id) in one transaction: the hold taken out, its ledger
   * row, the charge and the thresholds it crosses. A throw anywhere leaves the hold open and nothing written.
   */
  private closeHold(cfg: KeyConfig, requestId: string, settleOf: (hold: HoldRow) => SettleInput, now: number) {
    const closed = this.ctx.storage.transactionSync(() => {
      const hold = this.tables.takeHold(requestId);
      if (!hold) return null;
      const input = settleOf(hold);
      const info = infoOf(hold);
      const row = ledgerRowFor(hold, info, input, cfg);
      const run = heldRun(info);
      if (run !== null) this.runs.close(run, hold.amount, row?.costNanos ?? 0);
      const tokens = { counted: countedTokens(hold, input), held: hold.tokens, admittedAt: hold.created_at };
      const charged = row ? charge(cfg, this.counters, row.costNanos, now, tokens) : this.counters;
      // Thresholds are decided here, where every settle of the key passes one at a time: each fires once a cycle.
      const { counters, reached } = reachedThresholds(cfg, charged);
      const view = this.view(counters);
      if (row) {
        this.tables.addRow(row, now);
        this.ctx.storage.kv.put("counters", counters);
      }
      for (const threshold of reached) if (view) this.outbox.add(thresholdEvent(view, threshold, now), now);
      return { amount: hold.amount, tokens: hold.tokens, counters, costNanos: row?.costNanos ?? 0 };
    });
    if (!closed) return null;
    this.counters = closed.counters;
    const held = this.held;
    this.held = { count: held.count - 1, nanos: held.nanos - closed.amount, tokens: held.tokens - closed.tokens };
    return closed.costNanos;
  }

  /** The guard's state for the event builders (alerts.ts), once the key is configured. */
  private view(counters = this.counters): GuardView | null {
    return this.record && this.config ? { record: this.record, config: this.config, counters, held: this.held } : null;
  }

  /** Persists counters that mark an event as raised together with the event (the outbox), atomically. */
  private raise(raised: { counters: Counters; event: WebhookEvent } | null, now: number): void {
    if (!raised) return;
    this.ctx.storage.transactionSync(() => {
      this.ctx.storage.kv.put("counters", raised.counters);
      this.outbox.add(raised.event, now);
    });
    this.counters = raised.counters;
    this.scheduleFlush(now);
  }

  private scheduleFlush(now: number): void {
    if (this.alarmPending) return;
    this.alarmPending = true;
    void this.ctx.storage.setAlarm(now + FLUSH_DELAY_MS);
  }
}
