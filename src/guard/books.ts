import type { KeyRecord } from "../keys/record.ts";
import type { WebhookEvent } from "../webhooks/events.ts";
import type { Counters } from "./types.ts";

/**
 * What a KeyGuard hands to the bookkeeping queue (`LEDGER`): everything D1 must learn about its key that D1 has
 * not confirmed yet. Every part is safe to write twice — rows by their unique request id, the record and the
 * counters by their versions, events by their ids — so a message sent again, or delivered twice, changes nothing.
 */
export interface BooksMessage {
  v: 1;
  keyId: string;
  walletId: string;
  /** ledger rows: a JSON array of arrays in `LEDGER_COLUMNS` order, built by the guard's SQLite */
  rows: string;
  /** their request ids, a JSON array (what the receipt confirms) */
  rowIds: string;
  /** the key's record, when D1 has not confirmed this version */
  record: KeyRecord | null;
  /** absolute counters, when D1 has not confirmed this version */
  counters: Counters | null;
  /** webhook events the guard decided (management changes, thresholds, limits, expiry) */
  events: WebhookEvent[];
}

/** What the consumer tells a guard once a message's contents are in D1: the guard may forget them. */
export interface BooksReceipt {
  rowIds: string;
  eventIds: string[];
  recordVersion: number;
  countersVersion: number;
}

/** The receipt of a message (sent back to its guard after the D1 write that carried it committed). */
export function receiptOf(m: BooksMessage): BooksReceipt {
  return {
    rowIds: m.rowIds,
    eventIds: m.events.map((e) => e.id),
    recordVersion: m.record?.configVersion ?? 0,
    countersVersion: m.counters?.version ?? 0,
  };
}
