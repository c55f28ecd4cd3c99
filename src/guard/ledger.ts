import { getTableColumns } from "drizzle-orm";
import { type LedgerRow, requests } from "../db/schema.ts";
import type { HeldTotals } from "./counters.ts";
import type { HoldInfo } from "./ledger-row.ts";
import type { Counters } from "./types.ts";

/**
 * The KeyGuard's two SQLite tables — open holds, and settled ledger rows waiting for (or kept after) their
 * flush to D1 — and the flush itself. Callers wrap writes in `transactionSync`.
 */

/** Settled rows stay this long after their flush so a replayed settle stays a no-op (holds live ≤ HOLD_TTL_MS). */
const LEDGER_RETENTION_MS = 3_600_000;
/** Ledger rows per D1 round trip. */
const FLUSH_BATCH = 200;

/**
 * The ledger's columns, from the drizzle schema. The flush writes plain prepared statements rather than
 * building them with drizzle: it runs inside the key's Durable Object, on the same thread as that key's
 * admissions, and drizzle's query building was the largest part of each flush's CPU.
 */
const LEDGER_COLUMNS = Object.entries(getTableColumns(requests)).map(([key, col]) => ({
  key,
  name: col.name,
  // Rows kept from before a column existed take its default.
  fallback: col.default === undefined ? null : col.default,
}));
/**
 * Every row of a flush in one statement: the rows travel as one JSON array of column-ordered arrays and SQLite
 * unpacks them (`json_each`), instead of dozens of multi-row inserts held to D1's 100 bound values each.
 * (`WHERE true` keeps SQLite from reading ON CONFLICT as part of the SELECT.)
 */
const INSERT_ROWS =
  `INSERT INTO requests (${LEDGER_COLUMNS.map((c) => c.name).join(", ")}) ` +
  `SELECT ${LEDGER_COLUMNS.map((_, i) => `value ->> ${i}`).join(", ")} FROM json_each(?) WHERE true ` +
  "ON CONFLICT DO NOTHING";
const COUNTERS_SQL =
  "UPDATE spend_keys SET current_spend_nanos = ?, total_spend_nanos = ?, current_requests = ?, " +
  "total_requests = ?, spend_period_start = ?, request_period_start = ?, last_used_at = ?, snapshot_at = ? " +
  "WHERE id = ? AND snapshot_at < ?";

/** A column's default as an SQL literal (defaults are numbers, strings and booleans). */
function sqlLiteral(v: unknown): string {
  if (v === null || v === undefined) return "NULL";
  if (typeof v === "boolean") return v ? "1" : "0";
  if (typeof v === "number") return String(v);
  return `'${String(v).replaceAll("'", "''")}'`;
}
/**
 * Up to one batch of unflushed rows as the JSON the insert above takes, with their ids, built by SQLite from the
 * stored rows: `->>` reads booleans as 0/1 and objects as their JSON text, as D1 stores them. The rows never
 * pass through JavaScript, which kept the KeyGuard's isolate allocating per row on every flush.
 */
const PENDING_BATCH =
  "SELECT count(*) AS n, json_group_array(request_id) AS ids, json_group_array(json_array(" +
  LEDGER_COLUMNS.map((c) => `coalesce(row ->> '$.${c.key}', ${sqlLiteral(c.fallback)})`).join(", ") +
  ")) AS rows FROM (SELECT request_id, row FROM ledger WHERE flushed_at IS NULL ORDER BY created_at LIMIT ?)";

export interface HoldRow extends Record<string, SqlStorageValue> {
  request_id: string;
  amount: number;
  created_at: number;
  expires_at: number;
  info: string;
}

export class GuardTables {
  constructor(private readonly sql: SqlStorage) {}

  ensureSchema(): void {
    this.sql.exec(`CREATE TABLE IF NOT EXISTS holds (
      request_id TEXT PRIMARY KEY, amount INTEGER NOT NULL, created_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL, info TEXT NOT NULL)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS ledger (
      request_id TEXT PRIMARY KEY, row TEXT NOT NULL, cost INTEGER NOT NULL,
      flushed_at INTEGER, created_at INTEGER NOT NULL)`);
    this.sql.exec("CREATE INDEX IF NOT EXISTS ledger_flush ON ledger (flushed_at, created_at)");
  }

  heldTotals(): HeldTotals {
    const held = this.sql
      .exec<{ n: number; total: number }>("SELECT count(*) AS n, coalesce(sum(amount), 0) AS total FROM holds")
      .one();
    return { count: held.n, nanos: held.total };
  }

  placeHold(requestId: string, amount: number, now: number, ttlMs: number, info: HoldInfo): void {
    this.sql.exec(
      "INSERT INTO holds (request_id, amount, created_at, expires_at, info) VALUES (?, ?, ?, ?, ?)",
      requestId,
      amount,
      now,
      now + ttlMs,
      JSON.stringify(info),
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

  /**
   * Absolute counters and up to one batch of unflushed ledger rows to D1 in one round trip (replays are harmless:
   * counters carry their version, rows their unique request id). True when more rows wait.
   */
  async flush(db: D1Database, spendKeyId: string, c: Counters, now: () => number): Promise<boolean> {
    const pending = this.sql.exec<{ n: number; ids: string; rows: string }>(PENDING_BATCH, FLUSH_BATCH).one();
    const statements = [
      db
        .prepare(COUNTERS_SQL)
        .bind(
          c.currentSpendNanos,
          c.totalSpendNanos,
          c.currentRequests,
          c.totalRequests,
          c.spendPeriodStart,
          c.requestPeriodStart,
          c.lastUsedAt,
          c.version,
          spendKeyId,
          c.version,
        ),
    ];
    if (pending.n) statements.push(db.prepare(INSERT_ROWS).bind(pending.rows));
    await db.batch(statements);
    const at = now();
    if (pending.n) {
      this.sql.exec(
        "UPDATE ledger SET flushed_at = ? WHERE request_id IN (SELECT value FROM json_each(?))",
        at,
        pending.ids,
      );
    }
    this.sql.exec("DELETE FROM ledger WHERE flushed_at IS NOT NULL AND flushed_at < ?", at - LEDGER_RETENTION_MS);
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM ledger WHERE flushed_at IS NULL").one().n > 0;
  }

  /** Every row kept here (tests and `KeyGuard.inspect`). */
  ledgerRows(): LedgerRow[] {
    return this.sql
      .exec<{ row: string }>("SELECT row FROM ledger ORDER BY created_at")
      .toArray()
      .map((r) => JSON.parse(r.row) as LedgerRow);
  }
}
