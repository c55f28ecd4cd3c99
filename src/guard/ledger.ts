import { LEDGER_COLUMNS, sqlLiteral } from "../db/ledger-columns.ts";
import type { LedgerRow } from "../db/schema.ts";
import type { HoldInfo, HoldRow } from "./ledger-row.ts";
import type { HeldTotals } from "./types.ts";

export type { HoldRow };

/**
 * The KeyGuard's two SQLite tables — open holds, and settled ledger rows waiting for D1 to confirm them (or kept
 * a while after, so a replayed settle stays a no-op). Callers wrap writes in `transactionSync`.
 */

/** Confirmed rows stay this long so a replayed settle stays a no-op (holds live ≤ HOLD_TTL_MS). */
const LEDGER_RETENTION_MS = 3_600_000;
/** Rows a message carries at most; and the JSON they may take (a queue message is at most 128 KB). */
const MESSAGE_ROWS = 200;
const MESSAGE_ROW_CHARS = 96_000;

/**
 * Up to one message's rows due to be sent (never sent, or sent `resendMs` ago and not confirmed), oldest first,
 * as the JSON the consumer's insert takes, with their ids — built by SQLite from the stored rows: `->>` reads
 * booleans as 0/1 and objects as their JSON text, as D1 stores them, and the rows never pass through JavaScript.
 * The first row always goes, however large; the others while the message stays under its size.
 */
const DUE_ROWS =
  "SELECT count(*) AS n, coalesce(json_group_array(request_id), '[]') AS ids, json_group_array(json_array(" +
  LEDGER_COLUMNS.map((c) => `coalesce(row ->> '$.${c.key}', ${sqlLiteral(c.fallback)})`).join(", ") +
  ")) AS rows FROM (SELECT request_id, row, sum(length(row)) OVER (ORDER BY created_at, request_id) AS chars, " +
  "row_number() OVER (ORDER BY created_at, request_id) AS k FROM ledger " +
  "WHERE flushed_at IS NULL AND (sent_at IS NULL OR sent_at <= ?) ORDER BY created_at, request_id LIMIT ?) " +
  "WHERE k = 1 OR chars <= ?";

export class GuardTables {
  constructor(private readonly sql: SqlStorage) {}

  ensureSchema(): void {
    this.sql.exec(`CREATE TABLE IF NOT EXISTS holds (
      request_id TEXT PRIMARY KEY, amount INTEGER NOT NULL, created_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL, info TEXT NOT NULL)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS ledger (
      request_id TEXT PRIMARY KEY, row TEXT NOT NULL, cost INTEGER NOT NULL,
      flushed_at INTEGER, created_at INTEGER NOT NULL, sent_at INTEGER)`);
    this.sql.exec("CREATE INDEX IF NOT EXISTS ledger_flush ON ledger (flushed_at, created_at)");
    // Tables made before rows went through the bookkeeping queue lack the column that says a row was sent.
    const columns = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM pragma_table_info('ledger')").one().n;
    if (columns === 5) this.sql.exec("ALTER TABLE ledger ADD COLUMN sent_at INTEGER");
    // Holds made before token limits reserve no tokens.
    const holdColumns = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM pragma_table_info('holds')").one().n;
    if (holdColumns === 5) this.sql.exec("ALTER TABLE holds ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0");
  }

  heldTotals(): HeldTotals {
    const held = this.sql
      .exec<{ n: number; total: number; tokens: number }>(
        "SELECT count(*) AS n, coalesce(sum(amount), 0) AS total, coalesce(sum(tokens), 0) AS tokens FROM holds",
      )
      .one();
    return { count: held.n, nanos: held.total, tokens: held.tokens };
  }

  placeHold(requestId: string, hold: { nanos: number; tokens: number }, now: number, ttlMs: number, info: HoldInfo) {
    this.sql.exec(
      "INSERT INTO holds (request_id, amount, created_at, expires_at, info, tokens) VALUES (?, ?, ?, ?, ?, ?)",
      requestId,
      hold.nanos,
      now,
      now + ttlMs,
      JSON.stringify(info),
      hold.tokens,
    );
  }

  /** Removes an open hold and returns it (undefined when none is open), in the caller's transaction. */
  takeHold(requestId: string): HoldRow | undefined {
    return this.sql.exec<HoldRow>("DELETE FROM holds WHERE request_id = ? RETURNING *", requestId).toArray()[0];
  }

  /** The ids of holds past their lifetime (each then closed by `takeHold`, which reads the row itself). */
  expiredHoldIds(now: number): string[] {
    return this.sql
      .exec<{ request_id: string }>("SELECT request_id FROM holds WHERE expires_at <= ?", now)
      .toArray()
      .map((h) => h.request_id);
  }

  nextExpiry(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT min(expires_at) AS at FROM holds").one().at;
  }

  /** The cost a request was already charged, when it was settled before (an idempotent replay). */
  settledCost(requestId: string): number | undefined {
    return this.sql.exec<{ cost: number }>("SELECT cost FROM ledger WHERE request_id = ?", requestId).toArray()[0]
      ?.cost;
  }

  /** Records the ledger row of a settled request. */
  addRow(row: LedgerRow, now: number): void {
    this.sql.exec(
      "INSERT INTO ledger (request_id, row, cost, created_at) VALUES (?, ?, ?, ?)",
      row.requestId,
      JSON.stringify(row),
      row.costNanos,
      now,
    );
  }

  /** Up to one message's rows due to be sent (see `DUE_ROWS`); `resendBefore`: sent before this, not confirmed. */
  dueRows(resendBefore: number): { n: number; ids: string; rows: string } {
    return this.sql
      .exec<{ n: number; ids: string; rows: string }>(DUE_ROWS, resendBefore, MESSAGE_ROWS, MESSAGE_ROW_CHARS)
      .one();
  }

  /** Whether any row is due to be sent (as `dueRows` picks them), without building the message. */
  anyDue(resendBefore: number): boolean {
    return (
      this.sql
        .exec<{ n: number }>(
          "SELECT count(*) AS n FROM (SELECT 1 FROM ledger WHERE flushed_at IS NULL AND (sent_at IS NULL OR " +
            "sent_at <= ?) LIMIT 1)",
          resendBefore,
        )
        .one().n > 0
    );
  }

  /** Marks rows as handed to the queue (still owed a receipt). `ids`: a JSON array. */
  markSent(ids: string, now: number): void {
    this.sql.exec(
      "UPDATE ledger SET sent_at = ? WHERE flushed_at IS NULL AND request_id IN (SELECT value FROM json_each(?))",
      now,
      ids,
    );
  }

  /** Rows D1 has confirmed; and rows confirmed long enough ago to forget. */
  confirm(ids: string, now: number): void {
    this.sql.exec(
      "UPDATE ledger SET flushed_at = ? WHERE flushed_at IS NULL AND request_id IN (SELECT value FROM json_each(?))",
      now,
      ids,
    );
    this.sql.exec("DELETE FROM ledger WHERE flushed_at IS NOT NULL AND flushed_at < ?", now - LEDGER_RETENTION_MS);
  }

  /** Rows D1 has not confirmed yet. */
  unconfirmed(): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM ledger WHERE flushed_at IS NULL").one().n;
  }

  /** Every row kept here (tests and `KeyGuard.inspect`). */
  ledgerRows(): LedgerRow[] {
    return this.sql
      .exec<{ row: string }>("SELECT row FROM ledger ORDER BY created_at")
      .toArray()
      .map((r) => JSON.parse(r.row) as LedgerRow);
  }
}
