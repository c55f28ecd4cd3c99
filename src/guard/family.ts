import type { KeyRecord } from "../keys/record.ts";
import { hashesEqual } from "../lib/keys.ts";
import {
  type AncestorState,
  ancestorsForChildren,
  applyReport,
  carvedIn,
  childFields,
  effectiveExpiry,
  ended,
  expiryEnded,
  type Family,
  type FamilyRefusal,
  MINT_TIMEOUT_MS,
  type MintRequest,
  mergeAncestors,
  type Report,
  reportOf,
  rootFamily,
  type Stop,
  stoppedByAncestor,
} from "./children.ts";
import { roll } from "./counters.ts";
import type { Refusal } from "./policy.ts";
import type { Counters, HeldTotals, KeyConfig } from "./types.ts";

/**
 * What the family machinery reads of its KeyGuard, and the few things it asks the guard to do. Accessors, not
 * copies: the guard's record and counters change under it (management, admissions, settles).
 */
export interface FamilyHost {
  /** the guard's clock (tests swap it) */
  now(): number;
  record(): KeyRecord | null;
  config(): KeyConfig | null;
  counters(): Counters;
  held(): HeldTotals;
  /** counters this module wrote to storage together with the family: the guard's memory takes them */
  countersWritten(counters: Counters): void;
  scheduleFlush(now: number): void;
  /** the key's own revoke (a management commit) as of `at`, when an ancestor's revocation or its end reaches it */
  revoke(record: KeyRecord, now: number, at?: number): void;
  /** ends the key's rotation grace (a management commit), when an ancestor's pause reaches it */
  endGrace(record: KeyRecord, now: number): void;
}

/**
 * A KeyGuard's place among child keys (the rules are pure functions in children.ts; this applies them): carves
 * reserved here atomically, ancestors' state pushed down to the children, ended children's reports up to the
 * parent. It keeps the guard's invariant: every call reads and writes storage with no `await` between, writes in
 * one `transactionSync`, and updates memory only after; the awaits (`checkMinting`, `propagate`) come between
 * such steps, each of which stands alone.
 */
export class GuardFamily {
  private family: Family;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly env: Env,
    private readonly host: FamilyHost,
  ) {
    this.family = storage.kv.get<Family>("family") ?? rootFamily();
  }

  /** The stored family as it is now (read-only: every change goes through `write`). */
  get current(): Family {
    return this.family;
  }

  /** A child key's family, given at its creation. */
  adopt(family: Family): void {
    // Ancestors' states pushed before the record existed (a pause racing the mint) are newer: they stay.
    const merged = mergeAncestors(family, this.family.ancestors) ?? family;
    this.storage.kv.put("family", merged);
    this.family = merged;
  }

  /** Why an ancestor stops this key for a caller with its secret, or null (children.ts › stoppedByAncestor). */
  stopped(secretHash: string, now: number): Stop | null {
    return stoppedByAncestor(this.host.config(), this.family, secretHash, now);
  }

  /** The key's status or expiry changed: its live children are owed the change (`propagate`), its report too. */
  keyChanged(now: number): void {
    if (Object.keys(this.family.live).length) this.write({ ...this.family, push: true }, now);
    this.refreshReport(now);
  }

  /** When the alarm must wake for the family: the key's effective expiry, and each reservation's timeout. */
  wakes(cfg: KeyConfig, now: number): (number | null)[] {
    return [
      this.ended(now) ? null : effectiveExpiry(cfg, this.family),
      ...Object.values(this.family.minting ?? {}).map((at) => at + MINT_TIMEOUT_MS),
    ];
  }

  /**
   * KeyGuard.mintChild: the reservation of a child's carve, or why it is refused (with the parent's request shape,
   * the dialect of the answer, once the caller has shown the key's current secret).
   */
  mint(secretHash: string, req: MintRequest) {
    const now = this.host.now();
    this.expire(now);
    const cfg = this.host.config();
    const record = this.host.record();
    // Only the current secret mints: a rotated-out one's grace is for finishing work, not for making credentials.
    if (!cfg || !record || !hashesEqual(cfg.secretHash, secretHash)) return { ok: false as const, refusal: null };
    const refused = (refusal: FamilyRefusal) => ({ ok: false as const, refusal, shape: cfg.requestShape });
    const stop = stoppedByAncestor(cfg, this.family, secretHash, now);
    if (stop) return refused({ status: stop.code === "key_paused" ? 403 : 401, ...stop });
    if (cfg.revoked) {
      const message = "This spend key has been revoked by its owner.";
      return refused({ status: 401, code: "key_revoked", limit: "revoked", message });
    }
    if (cfg.expiresAt !== null && cfg.expiresAt <= now) {
      const message = `This spend key expired at ${new Date(cfg.expiresAt).toISOString()}.`;
      return refused({ status: 401, code: "key_expired", limit: "expiry", message });
    }
    if (cfg.status === "paused") {
      const message = "This spend key is paused by its owner: it cannot mint child keys.";
      return refused({ status: 403, code: "key_paused", limit: "paused", message });
    }
    const c = roll(cfg, this.host.counters(), now);
    const committed = c.currentSpendNanos + this.host.held().nanos + this.carved(now);
    const minted = childFields(record, cfg, this.family, req, committed, c.spendPeriodStart);
    if (!minted.ok) return refused(minted.refusal);
    const carve = cfg.spendLimit ? (req.carveNanos ?? 0) : 0;
    const minting = { ...this.family.minting, [req.childId]: now };
    this.write({ ...this.family, live: { ...this.family.live, [req.childId]: carve }, minting }, now);
    const family = { ...minted.family, ancestors: ancestorsForChildren(record, this.family) };
    return { ok: true as const, fields: minted.fields, family, walletId: record.walletId, parentId: record.id };
  }

  /** KeyGuard.cancelChild: a reservation whose child was never created goes back. */
  cancel(childId: string): void {
    const { [childId]: _, ...live } = this.family.live;
    const { [childId]: __, ...minting } = this.family.minting ?? {};
    this.write({ ...this.family, live, minting }, this.host.now());
  }

  /** KeyGuard.ancestorsChanged: the pushed states merged, followed, and passed on down and up. */
  async ancestorsChanged(pushed: Record<string, AncestorState>): Promise<void> {
    const now = this.host.now();
    // The state it had until now decides first: a key whose time ended stays ended whatever the push says.
    this.expire(now);
    const merged = mergeAncestors(this.family, pushed, this.host.record() !== null);
    if (merged) {
      this.write({ ...merged, push: merged.push || Object.keys(merged.live).length > 0 }, now);
      // An ancestor's earlier expiry is this key's: the alarm then wakes for it (nextWake) and returns the carve.
      if (this.host.config()) this.host.scheduleFlush(now);
    }
    // An ancestor's pause ends a rotation's grace as the key's own pause does.
    const record = this.host.record();
    if (record?.previousKeyHash && record.revokedAt === null && this.pausedByAncestor()) {
      this.host.endGrace(record, now);
    }
    this.follow(now);
    await this.propagate();
  }

  /**
   * A child key whose time has ended (its expiry or an ancestor's passed) is revoked as of that moment, for good:
   * its carve goes back to its parent then, so no later change of an expiry may revive it. Every call that reads
   * the key's state first brings this up to date (the alarm wakes at the effective expiry to do it).
   */
  expire(now: number): void {
    const record = this.host.record();
    const cfg = this.host.config();
    if (!record || !cfg || record.revokedAt !== null) return;
    const expiredAt = expiryEnded(cfg, this.family, now);
    if (!expiredAt) return;
    this.write({ ...this.family, expiredAt, push: Object.keys(this.family.live).length > 0 }, now);
    this.host.revoke(record, now, expiredAt.at);
    this.refreshReport(now);
  }

  /** An ancestor of this key is paused (as last pushed). */
  pausedByAncestor(): boolean {
    return this.family.chain.some((id) => this.family.ancestors[id]?.paused);
  }

  /** A revoked ancestor revokes this key (final, as any revoke); an ended key's report is brought up to date. */
  follow(now: number): void {
    const record = this.host.record();
    const revokedBy = this.family.chain.find((id) => this.family.ancestors[id]?.revoked);
    if (record && revokedBy && record.revokedAt === null) {
      this.write({ ...this.family, revokedBy, push: Object.keys(this.family.live).length > 0 }, now);
      this.host.revoke(record, now);
    }
    this.refreshReport(now);
  }

  /** KeyGuard.childCreated: the reservation no longer waits to be checked. */
  created(childId: string): void {
    const minting = this.family.minting ?? {};
    if (!(childId in minting)) return;
    const { [childId]: _, ...rest } = minting;
    this.write({ ...this.family, minting: rest }, this.host.now());
  }

  /** Reservations whose child was never created (the Worker was lost mid-mint) go back, from the alarm. */
  async checkMinting(now: number): Promise<void> {
    for (const [id, at] of Object.entries(this.family.minting ?? {})) {
      if (at + MINT_TIMEOUT_MS > now) continue;
      const answer = await this.env.KEY_GUARD.getByName(id).sealIfUncreated();
      if (answer === "sealed") this.cancel(id);
      else this.created(id);
    }
  }

  /** KeyGuard.childReport: a child's report applied (a replay or an older one changes nothing). */
  childReport(childId: string, report: Report): void {
    const now = this.host.now();
    const next = applyReport(this.family, childId, report, this.period(now));
    if (!next) return;
    this.write(next, now);
    this.refreshReport(now);
  }

  /** KeyGuard.propagate: the ancestors' state to the live children, then this key's report to its parent. */
  async propagate(): Promise<void> {
    const record = this.host.record();
    if (this.family.push && record) {
      const version = record.configVersion;
      const state = ancestorsForChildren(record, this.family);
      await Promise.all(
        Object.keys(this.family.live).map((id) => this.env.KEY_GUARD.getByName(id).ancestorsChanged(state)),
      );
      // A change made while pushing goes again.
      if (this.host.record()?.configVersion === version) this.write({ ...this.family, push: false }, this.host.now());
    }
    const report = this.family.report;
    const parent = this.family.chain[0];
    const self = this.host.record();
    if (report && !report.acked && parent && self) {
      const { acked, ...sent } = report;
      await this.env.KEY_GUARD.getByName(parent).childReport(self.id, sent);
      if (this.family.report?.seq === report.seq) {
        this.write({ ...this.family, report: { ...report, acked: true } }, this.host.now());
      }
    }
  }

  /** KeyGuard.familyState: the family and what the children take of the cycle now. */
  state(): Family & { carvedNanos: number } {
    return { ...this.family, carvedNanos: this.carved(this.host.now()) };
  }

  /** What the children take of this period (nothing without a spend limit: such a key reserves nothing). */
  carved(now: number): number {
    return this.host.config()?.spendLimit ? carvedIn(this.family, this.period(now)) : 0;
  }

  /** A key that will never be admitted again (itself or an ancestor revoked or expired). */
  ended(now: number): boolean {
    const cfg = this.host.config();
    return cfg !== null && ended(cfg, this.family, now);
  }

  /** An ended child key's report to its parent, set again as its holds settle and its own children report. */
  refreshReport(now: number): void {
    const cfg = this.host.config();
    if (!cfg || !this.family.chain.length || !this.ended(now)) return;
    const c = roll(cfg, this.host.counters(), now);
    const report = reportOf(this.family, this.period(now), c.currentSpendNanos, this.host.held());
    if (report === this.family.report) return;
    this.write({ ...this.family, report }, now);
    this.host.scheduleFlush(now);
  }

  /** The spend period of now (0 without a spend limit, or for `total`). */
  private period(now: number): number {
    return roll(this.host.config(), this.host.counters(), now).spendPeriodStart;
  }

  /** Stores the family, and what the children take with the counters (D1's lists show it), in one transaction. */
  private write(family: Family, now: number): void {
    const current = this.host.counters();
    const carvedNanos = this.host.config()?.spendLimit ? carvedIn(family, this.period(now)) : 0;
    const counters =
      carvedNanos === (current.carvedNanos ?? 0) ? current : { ...current, carvedNanos, version: current.version + 1 };
    this.storage.transactionSync(() => {
      this.storage.kv.put("family", family);
      if (counters !== current) this.storage.kv.put("counters", counters);
    });
    this.family = family;
    if (counters !== current) {
      this.host.countersWritten(counters);
      if (this.host.config()) this.host.scheduleFlush(now);
    }
  }
}

/** A child key's spend refusal names its carve: its spend limit is its share of its parent's cycle. */
export function childRefusal(r: Refusal, cfg: KeyConfig | null): Refusal {
  if (r.code !== "spend_limit_exceeded" || !cfg?.parentKeyId) return r;
  // A carve cannot be raised (the wallet's change is refused): say what can be done instead.
  const own = r.message.replace("raise the limit", "its parent can mint a key with a larger carve");
  const message = `${own} This child key's spend limit is its carve of its parent ${cfg.parentKeyId}'s cycle.`;
  const details = r.details ? { ...r.details, limit: "carve" as const } : undefined;
  return { ...r, code: "carve_exceeded", limit: "carve", message, ...(details ? { details } : {}) };
}
