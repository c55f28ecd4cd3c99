import type { WebhookEvent } from "../webhooks/events.ts";

/** Events a message carries at most (an event is a key's view, about 1–2 KB). */
const MESSAGE_EVENTS = 20;

/**
 * Webhook events a KeyGuard decides wait here, in its own SQLite storage, written in the same transaction as the
 * change that raised them, until the bookkeeping consumer confirms it wrote their deliveries to D1.
 */
export class GuardOutbox {
  constructor(private readonly sql: SqlStorage) {}

  ensureSchema(): void {
    this.sql.exec(
      "CREATE TABLE IF NOT EXISTS outbox (id TEXT PRIMARY KEY, event TEXT NOT NULL, created_at INTEGER NOT NULL, " +
        "sent_at INTEGER)",
    );
    // Outboxes made before events went through the bookkeeping queue lack the column that says one was sent.
    const columns = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM pragma_table_info('outbox')").one().n;
    if (columns === 3) this.sql.exec("ALTER TABLE outbox ADD COLUMN sent_at INTEGER");
  }

  /** The same event id twice is one event. */
  add(event: WebhookEvent, now: number): void {
    this.sql.exec(
      "INSERT OR IGNORE INTO outbox (id, event, created_at) VALUES (?, ?, ?)",
      event.id,
      JSON.stringify(event),
      now,
    );
  }

  /** Events due to be sent: never sent, or sent before `resendBefore` and not confirmed; oldest first. */
  due(resendBefore: number): WebhookEvent[] {
    return this.sql
      .exec<{ event: string }>(
        "SELECT event FROM outbox WHERE sent_at IS NULL OR sent_at <= ? ORDER BY created_at, id LIMIT ?",
        resendBefore,
        MESSAGE_EVENTS,
      )
      .toArray()
      .map((r) => JSON.parse(r.event) as WebhookEvent);
  }

  /** Whether any event is due to be sent (as `due` picks them). */
  anyDue(resendBefore: number): boolean {
    const due = "SELECT count(*) AS n FROM (SELECT 1 FROM outbox WHERE sent_at IS NULL OR sent_at <= ? LIMIT 1)";
    return this.sql.exec<{ n: number }>(due, resendBefore).one().n > 0;
  }

  markSent(ids: string[], now: number): void {
    for (const id of ids) this.sql.exec("UPDATE outbox SET sent_at = ? WHERE id = ?", now, id);
  }

  /** Events whose deliveries D1 now holds. */
  confirm(ids: string[]): void {
    for (const id of ids) this.sql.exec("DELETE FROM outbox WHERE id = ?", id);
  }

  unconfirmed(): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM outbox").one().n;
  }
}
