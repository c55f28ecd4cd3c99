import { ConfigError } from "../config.ts";
import { type ApiError, type ErrorCode, type RefusalLimit, refusalLimit } from "./errors.ts";

/**
 * The operator's log (docs/deploy.md, "Logs"): one JSON line per event, through `console.log` / `warn` / `error`,
 * so Workers Logs indexes every field. Each line is built here from the named fields below and nothing else: never
 * a secret (spend key, wallet key, provider key, webhook secret, ADMIN_TOKEN), never a prompt or a completion.
 * Should an error text carry a spend or wallet key anyway, its secret part is cut out of the line.
 */

export type LogEvent =
  /** a proxied request answered 4xx/5xx by the gateway itself (not relayed from the provider) */
  | "request.refused"
  /** the provider could not be reached, timed out, cut its answer, or answered non-2xx (relayed as is) */
  | "upstream.error"
  /** the settle RPC failed once and is sent again */
  | "settle.retry"
  /** the settle failed twice: the hold stays open until its TTL, then its alarm charges it in full */
  | "settle.lost"
  /** a KeyGuard could not hand its bookkeeping message to the LEDGER queue (it tries again in 5 s) */
  | "books.handover_failed"
  /** the LEDGER consumer's D1 transaction failed (the batch is retried in 10 s; the guards keep everything) */
  | "books.write_failed"
  /** a management change could not be copied to D1 at once (the guard's bookkeeping message brings it) */
  | "books.copy_deferred"
  /** a change of a key could not reach every descendant's guard at once (the key's alarm pushes it again) */
  | "children.push_deferred"
  /** a webhook receiver refused an attempt, or could not be reached */
  | "webhook.delivery_failed"
  /** the delivery consumer could not make or record an attempt (D1, the signing secret); retried in 5 s */
  | "webhook.consumer_failed"
  /** deliveries written to D1 could not be queued (the cron's sweeper queues them a minute later) */
  | "webhook.not_queued"
  /** a retention step stopped (the next cron step resumes it) */
  | "retention.failed"
  /** the Worker's settings break a rule (src/config.ts): every request answers 500 until they are fixed */
  | "config.invalid"
  /** an unexpected error answered 500 outside the proxied routes */
  | "internal.error";

export type LogLevel = "info" | "warn" | "error";

/** Everything a line may carry, named as the API names the same things. */
export interface LogFields {
  request_id?: string;
  /** the spend key's public id (`spk_…`), never the key */
  spend_key_id?: string;
  wallet_id?: string;
  /** the proxied route, e.g. `/v1/chat/completions` */
  route?: string;
  /** the model the request asked for */
  model?: string;
  provider?: string;
  /** the HTTP status answered (or received from the provider or a webhook receiver); null when there was none */
  status?: number | null;
  /** what refused a request: a limit or scope of the key, or the gateway's own bound (errors.ts › RefusalLimit) */
  limit?: RefusalLimit;
  /** the error code of the answer */
  code?: ErrorCode;
  /** what failed, as text (at most 1,000 characters) */
  error?: string;
  /** the provider's own request id (for its support) */
  upstream_request_id?: string;
  /** bookkeeping: the keys, messages and ledger rows of a batch or message */
  spend_key_ids?: string[];
  messages?: number;
  rows?: number;
  events?: number;
  /** webhooks */
  webhook_id?: string;
  delivery_id?: string;
  event_id?: string;
  event_type?: string;
  attempt?: number;
  /** the delivery has no retry left */
  dead?: boolean;
  retry_in_s?: number;
  /** retention: what the step did before it stopped */
  archived?: number;
  parts?: number;
}

/** What the lines of one proxied request say about it, filled in as admission learns it. */
export type RequestLog = Pick<LogFields, "request_id" | "route" | "spend_key_id" | "wallet_id" | "model" | "provider">;

const CONSOLE = { info: "log", warn: "warn", error: "error" } as const;
const MAX_ERROR = 1_000;
/** A spend or wallet key (lib/keys.ts): prefix, public id, then the secret and checksum, which are cut out. */
const KEY = /(sk-sg-|sgw_)([0-9A-Za-z]{16})_[0-9A-Za-z]{30}/g;

/** Writes one line: `{"level", "msg", …fields}`. */
export function log(level: LogLevel, msg: LogEvent, fields: LogFields): void {
  const line: Record<string, unknown> = { level, msg, ...fields };
  if (fields.error !== undefined && fields.error.length > MAX_ERROR)
    line.error = `${fields.error.slice(0, MAX_ERROR)}…`;
  console[CONSOLE[level]](JSON.stringify(line).replace(KEY, "$1$2_[redacted]"));
}

/** An error's text for a line: its message (and its cause's), or what it is. */
export function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? ` (cause: ${err.cause.message})` : "";
  return `${err.message}${cause}`;
}

/**
 * The line of an error answer (`app.onError`): on a proxied route (`request` set) the refusal with the limit that
 * refused, or the upstream error; elsewhere only what the operator must see (a 5xx). A configuration that does
 * not parse is `config.invalid` wherever it surfaces.
 */
export function logErrorAnswer(
  err: unknown,
  answer: ApiError,
  status: number,
  request: RequestLog | undefined,
  base: { request_id: string; route: string },
): void {
  const where = request ?? base;
  if (err instanceof ConfigError) {
    log("error", "config.invalid", { ...where, status, error: err.message });
    return;
  }
  const text = answer.opts.logText;
  if (!request) {
    if (status >= 500) log("error", "internal.error", { ...where, status, code: answer.code, error: text });
    return;
  }
  if (answer.code === "upstream_timeout" || answer.code === "upstream_unreachable") {
    log("error", "upstream.error", { ...request, status, code: answer.code, error: text ?? answer.message });
    return;
  }
  const limit = answer.opts.limit ?? refusalLimit(answer.code);
  const fields: LogFields = { ...request, status, code: answer.code, limit };
  if (text !== undefined) fields.error = text;
  log(status >= 500 ? "error" : "info", "request.refused", fields);
}
