import { getTableColumns } from "drizzle-orm";
import { walletD1 } from "../db/client.ts";
import { LEDGER_COLUMNS } from "../db/ledger-columns.ts";
import { spendKeys } from "../db/schema.ts";
import { type BooksMessage, receiptOf } from "../guard/books.ts";
import { keyGuard } from "../guard/stub.ts";
import type { Counters } from "../guard/types.ts";
import { COUNTER_COLUMNS, type KeyRecord } from "../keys/record.ts";
import { errorText, log } from "../lib/log.ts";
import { type DeliveryMessage, deliveriesFor, type Subscriber } from "../webhooks/events.ts";

/**
 * The bookkeeping queue's consumer: the one path by which what the KeyGuards decide reaches D1. A batch holds
 * messages from many keys; all of it is written in ONE D1 transaction (`batch`), so D1's write transactions
 * grow with batches, not with active keys. Each part is idempotent — rows by request id (the rollup trigger
 * only sees rows actually inserted), records and counters by version, deliveries by (webhook, event) — so a
 * message written twice changes nothing. Only after the commit does each guard get its receipt.
 */

export interface BooksEnv {
  DB: D1Database;
  KEY_GUARD: DurableObjectNamespace<import("../guard/key-guard.ts").KeyGuard>;
  WEBHOOKS: Queue<DeliveryMessage>;
}

/** The most JSON one bound value carries (D1 caps a value at 2 MB); a batch's rows split across statements. */
const CHUNK_CHARS = 1_000_000;
/** How long a batch waits before its retry while D1 is failing (the guards also send again, every 30 s). */
const RETRY_DELAY_S = 10;

const INSERT_ROWS =
  `INSERT INTO requests (${LEDGER_COLUMNS.map((c) => c.name).join(", ")}) ` +
  `SELECT ${LEDGER_COLUMNS.map((_, i) => `value ->> ${i}`).join(", ")} FROM json_each(?) WHERE true ` +
  "ON CONFLICT DO NOTHING";

/** The record's columns: every spend_keys column but the counter snapshot, which only `UPDATE_COUNTERS` writes. */
const COUNTERS: readonly string[] = COUNTER_COLUMNS;
const RECORD_COLUMNS = Object.entries(getTableColumns(spendKeys))
  .filter(([key]) => !COUNTERS.includes(key))
  .map(([key, col]) => ({ key: key as keyof KeyRecord, name: col.name }));
/** A record lands if D1 has none, or an older version; a key's id, wallet and creation never change. */
const UPSERT_RECORDS =
  `INSERT INTO spend_keys (${RECORD_COLUMNS.map((c) => c.name).join(", ")}) ` +
  `SELECT ${RECORD_COLUMNS.map((_, i) => `value ->> ${i}`).join(", ")} FROM json_each(?) WHERE true ` +
  "ON CONFLICT (id) DO UPDATE SET " +
  RECORD_COLUMNS.filter((c) => !["id", "walletId", "createdAt"].includes(c.key))
    .map((c) => `${c.name} = excluded.${c.name}`)
    .join(", ") +
  " WHERE excluded.config_version > spend_keys.config_version";

/** Absolute counters of many keys; each lands only over an older snapshot. */
const UPDATE_COUNTERS =
  "UPDATE spend_keys SET current_spend_nanos = c.value ->> 1, total_spend_nanos = c.value ->> 2, " +
  "current_requests = c.value ->> 3, total_requests = c.value ->> 4, spend_period_start = c.value ->> 5, " +
  "request_period_start = c.value ->> 6, last_used_at = c.value ->> 7, snapshot_at = c.value ->> 8, " +
  "current_tokens = c.value ->> 9, total_tokens = c.value ->> 10, token_period_start = c.value ->> 11, " +
  "carved_spend_nanos = c.value ->> 12 " +
  "FROM json_each(?) AS c WHERE spend_keys.id = c.value ->> 0 AND spend_keys.snapshot_at < c.value ->> 8";

const INSERT_DELIVERIES =
  "INSERT INTO webhook_deliveries (id, webhook_id, wallet_id, event_id, event_type, payload, status, attempts, " +
  "next_attempt_at, created_at, updated_at) SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, " +
  "value ->> 4, value ->> 5, 'pending', 0, ?1, ?1, ?1 FROM json_each(?2) WHERE true ON CONFLICT DO NOTHING " +
  "RETURNING id AS deliveryId, wallet_id AS walletId";

const SUBSCRIBERS =
  "SELECT id, wallet_id AS walletId, events, created_at AS createdAt FROM webhooks " +
  "WHERE enabled = 1 AND deleted_at IS NULL AND wallet_id IN (SELECT value FROM json_each(?))";

/** Writes a batch of guards' messages to D1 in one transaction, then sends each guard its receipt. */
export async function writeBooks(batch: MessageBatch<BooksMessage>, env: BooksEnv): Promise<void> {
  const messages = batch.messages.map((m) => m.body);
  const now = Date.now();
  const delivered: DeliveryMessage[] = [];
  try {
    // One transaction per database the batch's wallets live in (one today).
    const byDb = new Map<D1Database, BooksMessage[]>();
    for (const m of messages) {
      const db = walletD1(env, m.walletId);
      byDb.set(db, [...(byDb.get(db) ?? []), m]);
    }
    for (const [db, mine] of byDb) delivered.push(...(await writeToD1(db, mine, now)));
  } catch (err) {
    // Nothing was written (one transaction). The messages come back later; the guards hold everything anyway.
    const keys = [...new Set(messages.map((m) => m.keyId))];
    log("error", "books.write_failed", {
      messages: messages.length,
      rows: messages.reduce((n, m) => n + (JSON.parse(m.rowIds) as unknown[]).length, 0),
      spend_key_ids: keys.slice(0, 20),
      error: errorText(err),
    });
    batch.retryAll({ delaySeconds: RETRY_DELAY_S });
    return;
  }
  // A lost receipt only means the guard sends it again; the write above makes that harmless.
  await Promise.allSettled(messages.map((m) => keyGuard(env, m.keyId).confirm(receiptOf(m))));
  // A lost queue message leaves its delivery row pending: the sweeper queues it a minute later.
  for (let i = 0; i < delivered.length; i += 100) {
    const part = delivered.slice(i, i + 100);
    await env.WEBHOOKS.sendBatch(part.map((body) => ({ body }))).catch((err) =>
      log("warn", "webhook.not_queued", { messages: part.length, error: errorText(err) }),
    );
  }
  batch.ackAll();
}

/** The statements of a batch, in one D1 transaction; answers the webhook deliveries it created, to be queued. */
export async function writeToD1(db: D1Database, messages: BooksMessage[], now: number): Promise<DeliveryMessage[]> {
  const statements: D1PreparedStatement[] = [];
  const records = newest(
    messages,
    (m) => m.record,
    (r) => r.configVersion,
  );
  if (records.length) statements.push(db.prepare(UPSERT_RECORDS).bind(jsonRows(records, recordArray)));
  const counters = newest(
    messages,
    (m) => m.counters && { ...m.counters, keyId: m.keyId },
    (c) => c.version,
  );
  if (counters.length) statements.push(db.prepare(UPDATE_COUNTERS).bind(jsonRows(counters, countersArray)));
  for (const chunk of rowChunks(messages)) statements.push(db.prepare(INSERT_ROWS).bind(chunk));
  const deliveries = await deliveriesOf(db, messages);
  if (deliveries.length) statements.push(db.prepare(INSERT_DELIVERIES).bind(now, JSON.stringify(deliveries)));
  if (!statements.length) return [];
  const results = await db.batch<DeliveryMessage>(statements);
  return deliveries.length ? (results[results.length - 1]?.results ?? []) : [];
}

/** Per key, only the newest of what several messages carry (one UPDATE … FROM must not see a key twice). */
function newest<T>(messages: BooksMessage[], pick: (m: BooksMessage) => T | null, version: (t: T) => number) {
  const byKey = new Map<string, T>();
  for (const m of messages) {
    const t = pick(m);
    const had = byKey.get(m.keyId);
    if (t && (had === undefined || version(t) > version(had))) byKey.set(m.keyId, t);
  }
  return [...byKey.values()];
}

const jsonRows = <T>(items: T[], toArray: (t: T) => unknown[]) => JSON.stringify(items.map(toArray));

function recordArray(r: KeyRecord): unknown[] {
  return RECORD_COLUMNS.map((c) => {
    const v = r[c.key];
    // JSON columns travel as their text, as D1 stores them; `->>` would otherwise hand back the array itself.
    return Array.isArray(v) ? JSON.stringify(v) : typeof v === "boolean" ? Number(v) : (v ?? null);
  });
}

function countersArray(c: Counters & { keyId: string }): unknown[] {
  const { currentSpendNanos, totalSpendNanos, currentRequests, totalRequests } = c;
  const { spendPeriodStart, requestPeriodStart, lastUsedAt, version } = c;
  // Counters kept before token limits lack the token fields: D1 keeps its zeros.
  const { currentTokens = 0, totalTokens = 0, tokenPeriodStart = 0 } = c;
  return [
    c.keyId,
    currentSpendNanos,
    totalSpendNanos,
    currentRequests,
    totalRequests,
    spendPeriodStart,
    requestPeriodStart,
    lastUsedAt,
    version,
    currentTokens,
    totalTokens,
    tokenPeriodStart,
    c.carvedNanos ?? 0,
  ];
}

/** The messages' row arrays joined as JSON text without parsing them, at most `CHUNK_CHARS` a statement. */
function rowChunks(messages: BooksMessage[]): string[] {
  const chunks: string[] = [];
  let parts: string[] = [];
  let size = 0;
  for (const m of messages) {
    const inner = m.rows.slice(1, -1);
    if (!inner) continue;
    if (size + inner.length > CHUNK_CHARS && parts.length) {
      chunks.push(`[${parts.join(",")}]`);
      parts = [];
      size = 0;
    }
    parts.push(inner);
    size += inner.length + 1;
  }
  if (parts.length) chunks.push(`[${parts.join(",")}]`);
  return chunks;
}

/** The delivery rows of the batch's events, for the subscribed webhooks of their wallets (one read). */
async function deliveriesOf(db: D1Database, messages: BooksMessage[]): Promise<unknown[][]> {
  const withEvents = messages.filter((m) => m.events.length);
  if (!withEvents.length) return [];
  const wallets = [...new Set(withEvents.map((m) => m.walletId))];
  const { results } = await db
    .prepare(SUBSCRIBERS)
    .bind(JSON.stringify(wallets))
    .all<{ id: string; walletId: string; events: string | null; createdAt: number }>();
  if (!results.length) return [];
  const hooks: Subscriber[] = results.map((h) => ({ ...h, events: h.events ? JSON.parse(h.events) : null }));
  return withEvents.flatMap((m) =>
    deliveriesFor(hooks, m.walletId, m.events).map((d) => [
      d.id,
      d.webhookId,
      d.walletId,
      d.eventId,
      d.eventType,
      d.payload,
    ]),
  );
}
