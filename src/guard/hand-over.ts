import type { KeyRecord } from "../keys/record.ts";
import { errorText, log } from "../lib/log.ts";
import type { BooksMessage, BooksReceipt } from "./books.ts";
import type { GuardTables } from "./ledger.ts";
import type { GuardOutbox } from "./outbox.ts";
import type { Counters } from "./types.ts";

/** What was handed over and not confirmed this long after goes again (the queue lost it, or D1 is down). */
export const RESEND_AFTER_MS = 30_000;
/** After a failed hand-over (the queue refused), the next try. */
export const RETRY_MS = 5_000;

/** The versions of the record and counters D1 has confirmed (kept in storage: what is owed survives eviction). */
interface Synced {
  record: number;
  counters: number;
}

/** The key's state a message may carry. */
export interface KeyState {
  keyId: string;
  walletId: string;
  record: KeyRecord | null;
  counters: Counters;
}

export type HandOverResult = "done" | "backlog" | "failed";

/**
 * When the guard's alarm must run next (null: never): at once for a backlog (more than one message's worth), soon
 * after a refused hand-over, after the resend delay while D1 owes a receipt, and at the next expiry (a hold's, the
 * key's).
 */
export function nextWake(
  handed: HandOverResult,
  owed: boolean,
  expiries: (number | null)[],
  now: number,
): number | null {
  const times = [
    handed === "backlog" ? now : handed === "failed" ? now + RETRY_MS : null,
    owed ? now + RESEND_AFTER_MS : null,
    ...expiries,
  ];
  const due = times.filter((t): t is number => typeof t === "number");
  return due.length ? Math.min(...due) : null;
}

/**
 * A KeyGuard's side of the bookkeeping path (docs/bookkeeping.md): what D1 has not confirmed — ledger rows, events,
 * and the record and counters when D1 lacks their versions — goes to the queue in one message; only a receipt
 * makes the guard forget it. Storage writes are synchronous, in the guard's own transactions.
 */
export class GuardBooks {
  private synced: Synced;
  /** the versions last handed over, and when (in memory only: losing it only means sending them again) */
  private sent = { record: 0, counters: 0, at: 0 };

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly tables: GuardTables,
    private readonly outbox: GuardOutbox,
  ) {
    this.synced = storage.kv.get<Synced>("synced") ?? { record: 0, counters: 0 };
  }

  /** How many things D1 has not confirmed (0: D1 has everything). */
  unconfirmed(key: KeyState): number {
    const record = (key.record?.configVersion ?? 0) > this.synced.record ? 1 : 0;
    const counters = key.counters.version > this.synced.counters ? 1 : 0;
    return this.tables.unconfirmed() + this.outbox.unconfirmed() + record + counters;
  }

  /** What a receipt confirms is no longer owed. */
  confirm(receipt: BooksReceipt, now: number): void {
    const synced = {
      record: Math.max(this.synced.record, receipt.recordVersion),
      counters: Math.max(this.synced.counters, receipt.countersVersion),
    };
    this.storage.transactionSync(() => {
      this.tables.confirm(receipt.rowIds, now);
      this.outbox.confirm(receipt.eventIds);
      this.storage.kv.put("synced", synced);
    });
    this.synced = synced;
  }

  /**
   * Sends one message with everything due: rows and events never sent (or sent long ago and never confirmed), and
   * the record and counters when D1 lacks their versions. "backlog" when more than one message's worth waits.
   */
  async handOver(
    key: KeyState,
    send: (m: BooksMessage) => Promise<unknown>,
    now: () => number,
  ): Promise<HandOverResult> {
    const resendBefore = now() - RESEND_AFTER_MS;
    const rows = this.tables.dueRows(resendBefore);
    const events = this.outbox.due(resendBefore);
    const owed = (version: number, synced: number, sent: number) =>
      version > synced && (version !== sent || this.sent.at <= resendBefore);
    const record = key.record && owed(key.record.configVersion, this.synced.record, this.sent.record);
    const counters = owed(key.counters.version, this.synced.counters, this.sent.counters);
    if (!rows.n && !events.length && !record && !counters) return "done";
    const message: BooksMessage = {
      v: 1,
      keyId: key.keyId,
      walletId: key.walletId,
      rows: rows.rows,
      rowIds: rows.ids,
      record: record ? key.record : null,
      counters: counters ? { ...key.counters } : null,
      events,
    };
    try {
      await send(message);
    } catch (err) {
      log("warn", "books.handover_failed", {
        spend_key_id: key.keyId,
        wallet_id: key.walletId,
        rows: rows.n,
        events: events.length,
        error: errorText(err),
      });
      return "failed";
    }
    const at = now();
    const eventIds = events.map((e) => e.id);
    this.storage.transactionSync(() => {
      if (rows.n) this.tables.markSent(rows.ids, at);
      if (eventIds.length) this.outbox.markSent(eventIds, at);
    });
    this.sent = {
      record: message.record?.configVersion ?? this.sent.record,
      counters: message.counters?.version ?? this.sent.counters,
      at,
    };
    const more = this.tables.anyDue(at - RESEND_AFTER_MS) || this.outbox.anyDue(at - RESEND_AFTER_MS);
    return more ? "backlog" : "done";
  }
}
