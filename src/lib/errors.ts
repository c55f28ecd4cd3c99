/**
 * One error model: every refusal is an ApiError with a code; the code decides the HTTP status and the
 * `type` in each wire dialect (OpenAI and Anthropic, per the error table in docs/api.md). Internals never reach a body.
 */

export type Dialect = "openai" | "anthropic";

interface CodeSpec {
  status: number;
  openaiType: string;
  anthropicType: string;
  /** Anthropic's status when it differs (spend limit → 402 billing_error). */
  anthropicStatus?: number;
}

const CODES = {
  invalid_api_key: { status: 401, openaiType: "invalid_request_error", anthropicType: "authentication_error" },
  key_paused: { status: 403, openaiType: "permission_error", anthropicType: "permission_error" },
  // Told only to a caller that presents the key's right secret: anyone else gets invalid_api_key.
  key_revoked: { status: 401, openaiType: "invalid_request_error", anthropicType: "authentication_error" },
  key_expired: { status: 401, openaiType: "invalid_request_error", anthropicType: "authentication_error" },
  model_not_allowed: { status: 403, openaiType: "permission_error", anthropicType: "permission_error" },
  model_not_found: { status: 404, openaiType: "invalid_request_error", anthropicType: "not_found_error" },
  model_not_priced: { status: 403, openaiType: "permission_error", anthropicType: "permission_error" },
  rate_limit_exceeded: { status: 429, openaiType: "requests", anthropicType: "rate_limit_error" },
  too_many_concurrent_requests: { status: 429, openaiType: "requests", anthropicType: "rate_limit_error" },
  request_limit_exceeded: { status: 429, openaiType: "insufficient_quota", anthropicType: "rate_limit_error" },
  token_limit_exceeded: { status: 429, openaiType: "insufficient_quota", anthropicType: "rate_limit_error" },
  token_rate_limit_exceeded: { status: 429, openaiType: "tokens", anthropicType: "rate_limit_error" },
  spend_limit_exceeded: {
    status: 429,
    openaiType: "insufficient_quota",
    anthropicType: "billing_error",
    anthropicStatus: 402,
  },
  run_spend_limit_exceeded: {
    status: 429,
    openaiType: "insufficient_quota",
    anthropicType: "billing_error",
    anthropicStatus: 402,
  },
  run_request_limit_exceeded: { status: 429, openaiType: "insufficient_quota", anthropicType: "rate_limit_error" },
  too_many_runs: { status: 429, openaiType: "requests", anthropicType: "rate_limit_error" },
  // A child key's spend reaching its carve (its spend limit); minting a child whose carve or bounds do not fit
  // its parent answers the same code with 409 (the route sets the status).
  carve_exceeded: {
    status: 429,
    openaiType: "insufficient_quota",
    anthropicType: "billing_error",
    anthropicStatus: 402,
  },
  invalid_request: { status: 400, openaiType: "invalid_request_error", anthropicType: "invalid_request_error" },
  request_too_large: { status: 413, openaiType: "invalid_request_error", anthropicType: "request_too_large" },
  provider_not_configured: { status: 503, openaiType: "server_error", anthropicType: "api_error" },
  upstream_timeout: { status: 504, openaiType: "server_error", anthropicType: "api_error" },
  upstream_unreachable: { status: 502, openaiType: "server_error", anthropicType: "api_error" },
  // Management / operator API
  unauthorized: { status: 401, openaiType: "invalid_request_error", anthropicType: "authentication_error" },
  forbidden: { status: 403, openaiType: "permission_error", anthropicType: "permission_error" },
  not_found: { status: 404, openaiType: "invalid_request_error", anthropicType: "not_found_error" },
  conflict: { status: 409, openaiType: "invalid_request_error", anthropicType: "invalid_request_error" },
  admin_disabled: { status: 503, openaiType: "server_error", anthropicType: "api_error" },
  internal_error: { status: 500, openaiType: "server_error", anthropicType: "api_error" },
} satisfies Record<string, CodeSpec>;

export type ErrorCode = keyof typeof CODES;

/**
 * What refused a proxied request: a limit or scope of the key, or one of the gateway's own bounds. The operator's
 * log carries it (log.ts), and so does the caller's `x-spendgate-limit` header — except for a bad key, which reads
 * the same whatever made it bad ("key") unless the caller holds the key's right secret.
 */
export type RefusalLimit =
  /** no key, a malformed or unknown one, or the wrong secret */
  | "key"
  | "revoked"
  | "expiry"
  | "paused"
  /** an OpenAI-shaped key on an Anthropic route, or the reverse */
  | "shape"
  | "model"
  | "provider"
  /** a model outside the catalog */
  | "catalog"
  /** an unpriced request on a key with a spend limit */
  | "price"
  /** a request no hold can bound, on a key with a spend limit */
  | "unbounded"
  /** a provider not configured here, or a route it does not serve */
  | "unavailable"
  | "concurrency"
  | "requests"
  | "spend"
  /** a child key's spend limit (its carve of its parent's cycle), or a child that does not fit its parent */
  | "carve"
  | "rate"
  /** tokens per cycle */
  | "tokens"
  /** tokens per UTC minute */
  | "token_rate"
  /** a run's own budget (`run_limit`): its spend, its requests; or the key's bound on live runs */
  | "run_spend"
  | "run_requests"
  | "runs"
  /** minting: a child field looser than its parent's */
  | "parent"
  /** minting: a key whose delegation does not let it mint (null), or a child's delegation past its parent's */
  | "delegation"
  /** a malformed request */
  | "body"
  /** a body over MAX_BODY_BYTES */
  | "size"
  | "upstream"
  | "internal";

/** The limit an error code names when nothing more precise is known (the guard's refusals say more). */
const LIMIT_OF: Record<ErrorCode, RefusalLimit> = {
  invalid_api_key: "key",
  key_paused: "paused",
  key_revoked: "revoked",
  key_expired: "expiry",
  model_not_allowed: "model",
  model_not_found: "catalog",
  model_not_priced: "price",
  rate_limit_exceeded: "rate",
  too_many_concurrent_requests: "concurrency",
  request_limit_exceeded: "requests",
  spend_limit_exceeded: "spend",
  token_limit_exceeded: "tokens",
  token_rate_limit_exceeded: "token_rate",
  run_spend_limit_exceeded: "run_spend",
  run_request_limit_exceeded: "run_requests",
  too_many_runs: "runs",
  carve_exceeded: "carve",
  invalid_request: "body",
  request_too_large: "size",
  provider_not_configured: "unavailable",
  upstream_timeout: "upstream",
  upstream_unreachable: "upstream",
  unauthorized: "key",
  forbidden: "key",
  not_found: "body",
  conflict: "body",
  admin_disabled: "internal",
  internal_error: "internal",
};

export const refusalLimit = (code: ErrorCode): RefusalLimit => LIMIT_OF[code];

/**
 * One message for every bad spend key (missing, malformed, unknown, rotated-out, or revoked/expired for a caller
 * without the right secret): nothing tells a guesser which.
 */
export const INVALID_API_KEY_MESSAGE =
  "Incorrect API key provided. You can create and manage spend keys with the Spendgate management API.";

/** What a limit refusal names in the sibling `details` object. */
export interface LimitDetails {
  limit:
    | "spend"
    | "requests"
    | "rate"
    | "concurrency"
    | "tokens"
    | "token_rate"
    | "run_spend"
    | "run_requests"
    | "runs"
    | "carve";
  /** the run a run refusal is about */
  run?: string;
  amount?: string;
  count?: number;
  current?: string | number;
  cycle?: string;
  resets_at?: string | null;
}

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly opts: {
      param?: string;
      details?: LimitDetails;
      headers?: Record<string, string>;
      /** for the log only: what refused, when the code alone does not say */
      limit?: RefusalLimit;
      /** for the log only: what went wrong inside (never rendered) */
      logText?: string;
      /** the HTTP status when a route answers the code with another than its usual one (both dialects) */
      status?: number;
    } = {},
  ) {
    super(message);
  }

  status(dialect: Dialect): number {
    const spec: CodeSpec = CODES[this.code];
    if (this.opts.status !== undefined) return this.opts.status;
    return dialect === "anthropic" ? (spec.anthropicStatus ?? spec.status) : spec.status;
  }
}

export function renderError(err: ApiError, dialect: Dialect, requestId: string): Response {
  const spec: CodeSpec = CODES[err.code];
  const headers = new Headers(err.opts.headers);
  headers.set("content-type", "application/json");
  let body: unknown;
  if (dialect === "anthropic") {
    headers.set("request-id", requestId);
    body = {
      type: "error",
      // `code` is ours (Anthropic's errors have only a type): the same stable code the OpenAI dialect carries.
      error: { type: spec.anthropicType, message: err.message, code: err.code },
      request_id: requestId,
      ...(err.opts.details ? { details: err.opts.details } : {}),
    };
  } else {
    headers.set("x-request-id", requestId);
    body = {
      error: { message: err.message, type: spec.openaiType, param: err.opts.param ?? null, code: err.code },
      ...(err.opts.details ? { details: err.opts.details } : {}),
    };
  }
  return new Response(JSON.stringify(body), { status: err.status(dialect), headers });
}

/**
 * Anything that is not an ApiError becomes a bare 500: the cause goes to the log (`app.onError` writes it), never
 * into the body.
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const cause = err instanceof Error && err.cause instanceof Error ? ` (cause: ${err.cause.message})` : "";
  const logText = err instanceof Error ? (err.stack ?? err.message) + cause : String(err);
  return new ApiError("internal_error", "The gateway hit an internal error. Try again.", { logText });
}
