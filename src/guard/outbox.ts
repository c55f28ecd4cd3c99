import type { WebhookEvent } from "../webhooks/events.ts";

/**
 * Webhook events a KeyGuard decides wait here, in its own SQLite storage, written in the same transaction as
 * the change that raised them, until its alarm hands them to the delivery queue (alerts.ts › handOverEvents).
 */
export class GuardOutbox {
  constructor(private readonly sql: SqlStorage) {}

  ensureSchema(): void {
    this.sql.exec(
      "CREATE TABLE IF NOT EXISTS outbox (id TEXT PRIMARY KEY, event TEXT NOT NULL, created_at INTEGER NOT NULL)",
    );
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

  pending(): WebhookEvent[] {
    return this.sql
      .exec<{ event: string }>("SELECT event FROM outbox ORDER BY created_at LIMIT 100")
      .toArray()
      .map((r) => JSON.parse(r.event) as WebhookEvent);
  }

  sent(id: string): void {
    this.sql.exec("DELETE FROM outbox WHERE id = ?", id);
  }
}
