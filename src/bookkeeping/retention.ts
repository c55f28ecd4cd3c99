import { gatewayConfig } from "../config.ts";
import { walletD1s } from "../db/client.ts";
import { errorText, log } from "../lib/log.ts";
import { DAY_MS } from "../lib/time.ts";

/**
 * Ledger retention, one bounded step a minute (the cron): raw rows of the oldest day that is past the window —
 * older than `RETENTION_DAYS` whole UTC days, or any day before today while the raw rows outgrow
 * `RETENTION_MAX_BYTES` — are archived to R2 as gzipped NDJSON and then deleted from D1. The per key × model × day
 * rollups (`usage_daily`) already hold their totals: a trigger added each row as it was inserted.
 *
 * Exactly once, through any crash: rows are first *claimed* for a part (their `archive_part` set, in one
 * statement), then the part's object is written from exactly the claimed rows, then they are deleted. A step
 * that finds a claimed part finishes it first; writing the object again writes the same bytes.
 */

/** What one raw row takes in D1 with its indexes, measured by `npm run bench:scale` (docs/bookkeeping.md). */
export const ROW_BYTES = 600;
/** Rows in one archive object, and objects one step writes at most. */
const PART_ROWS = 2_000;
const PARTS_PER_STEP = 5;

export interface RetentionEnv {
  DB: D1Database;
  ARCHIVE: R2Bucket;
}

export interface RetentionStep {
  /** rows archived and deleted by this step */
  archived: number;
  /** the objects written */
  parts: string[];
}

/** Runs up to `PARTS_PER_STEP` parts; answers what it did. Safe to run at any time, and twice at once. */
export async function stepRetention(env: RetentionEnv, now = Date.now()): Promise<RetentionStep> {
  const step: RetentionStep = { archived: 0, parts: [] };
  try {
    const cfg = gatewayConfig(env);
    const window = { days: cfg.retentionDays, maxRows: Math.floor(cfg.retentionMaxBytes / ROW_BYTES) };
    for (const db of walletD1s(env)) {
      while (step.parts.length < PARTS_PER_STEP) {
        const part = (await unfinishedPart(db)) ?? (await claimPart(db, window, now));
        if (!part) break;
        step.archived += await finishPart(db, env.ARCHIVE, part);
        step.parts.push(part);
      }
    }
  } catch (err) {
    log("error", "retention.failed", { archived: step.archived, parts: step.parts.length, error: errorText(err) });
  }
  return step;
}

/** The object key of a part: `ledger/v1/date=<UTC day>/part-<claim time>-<random>.ndjson.gz` (docs/bookkeeping.md). */
function partName(day: number, now: number): string {
  const date = new Date(day * DAY_MS).toISOString().slice(0, 10);
  const [random = 0] = crypto.getRandomValues(new Uint32Array(1));
  return `ledger/v1/date=${date}/part-${now}-${random.toString(36)}.ndjson.gz`;
}

async function unfinishedPart(db: D1Database): Promise<string | null> {
  return db
    .prepare("SELECT archive_part FROM requests WHERE archive_part IS NOT NULL LIMIT 1")
    .first<string>("archive_part");
}

/** The oldest day past the window, if any; its oldest rows claimed for a new part (null: nothing to archive). */
async function claimPart(db: D1Database, window: { days: number; maxRows: number }, now: number) {
  const today = Math.floor(now / DAY_MS);
  const oldest = await db
    .prepare(
      "SELECT day, (SELECT sum(raw_rows) FROM ledger_days) AS total FROM ledger_days WHERE raw_rows > 0 " +
        "ORDER BY day LIMIT 1",
    )
    .first<{ day: number; total: number }>();
  if (!oldest) return null;
  const pastAge = oldest.day < today - window.days;
  const overSize = oldest.day < today && oldest.total > window.maxRows;
  if (!pastAge && !overSize) return null;
  const part = partName(oldest.day, now);
  const [claimed] = await db.batch([
    db
      .prepare(
        "UPDATE requests SET archive_part = ?1 WHERE rowid IN (SELECT rowid FROM requests " +
          "WHERE created_at >= ?2 AND created_at < ?3 AND archive_part IS NULL ORDER BY created_at LIMIT ?4)",
      )
      .bind(part, oldest.day * DAY_MS, (oldest.day + 1) * DAY_MS, PART_ROWS),
    // Raw rows before this instant may be in the archive: a query that needs raw rows starts after it.
    db
      .prepare(
        "INSERT INTO retention_state (name, value) VALUES ('archived_before', ?1) " +
          "ON CONFLICT DO UPDATE SET value = max(value, excluded.value)",
      )
      .bind((oldest.day + 1) * DAY_MS),
  ]);
  if (claimed?.meta.changes) return part;
  // The day's count said rows were left and none were: set it right so the next step moves on.
  await db.prepare("UPDATE ledger_days SET raw_rows = 0 WHERE day = ?").bind(oldest.day).run();
  return null;
}

/** Columns stored as 0/1 that the archive writes as booleans, and JSON text it writes as JSON. */
const BOOLEANS = ["usage_known", "overage", "stream"];
const JSON_COLUMNS = ["usage", "metadata"];

/** Writes the part's object from its claimed rows, then deletes them; answers how many. */
async function finishPart(db: D1Database, archive: R2Bucket, part: string): Promise<number> {
  const { results } = await db
    .prepare("SELECT * FROM requests WHERE archive_part = ? ORDER BY created_at, request_id")
    .bind(part)
    .all<Record<string, unknown>>();
  if (results.length) {
    const lines = results.map((row) => JSON.stringify(archiveRow(row))).join("\n");
    const gzipped = await new Response(
      new Blob([`${lines}\n`]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer();
    await archive.put(part, gzipped, {
      httpMetadata: { contentType: "application/gzip" },
      customMetadata: { rows: String(results.length), format: "ndjson; spendgate ledger v1" },
    });
  }
  await db.prepare("DELETE FROM requests WHERE archive_part = ?").bind(part).run();
  return results.length;
}

/** One archived row: D1's columns by their names, booleans as booleans, JSON columns as JSON. */
export function archiveRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(row)) {
    if (name === "archive_part") continue;
    if (BOOLEANS.includes(name)) out[name] = value === 1 || value === true;
    else if (JSON_COLUMNS.includes(name) && typeof value === "string") out[name] = JSON.parse(value);
    else out[name] = value;
  }
  return out;
}

/** Raw rows are complete from this instant on (0 when nothing was ever archived). */
export async function rawRowsFrom(db: D1Database): Promise<number> {
  return (
    (await db.prepare("SELECT value FROM retention_state WHERE name = 'archived_before'").first<number>("value")) ?? 0
  );
}
