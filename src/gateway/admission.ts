import type { Context } from "hono";
import { getCatalog } from "../catalog/catalog.ts";
import type { Prices, Usage } from "../catalog/pricing.ts";
import { gatewayConfig } from "../config.ts";
import { controlD1 } from "../db/client.ts";
import type { AppEnv } from "../env.ts";
import { keyGuard } from "../guard/stub.ts";
import type { AdmitResult } from "../guard/types.ts";
import { spendKeyFrom } from "../lib/credentials.ts";
import { ApiError, INVALID_API_KEY_MESSAGE } from "../lib/errors.ts";
import { hashSecret, parseKey } from "../lib/keys.ts";
import type { RequestLog } from "../lib/log.ts";
import { planAdmission, type RouteSpec } from "./admission-plan.ts";
import { rewriteBody } from "./body-rewrite.ts";
import { metadataFrom, type ParsedBody, parseBody, parseForm, runFrom } from "./request-body.ts";
import { Settlement } from "./settlement.ts";
import type { Target } from "./target.ts";

export type { RouteSpec };

/** An admitted request: its hold is placed, and it must be settled whatever happens next. */
export interface Admitted {
  target: Extract<Target, { kind: "ready" }>;
  /** what goes upstream: the client's bytes, or its JSON with the gateway's changes (below) */
  outBody: BodyInit;
  /** remove the usage-only chunk the gateway asked for on the client's behalf */
  stripUsageChunk: boolean;
  /** false for count_tokens: never counted or charged */
  metered: boolean;
  admission: Extract<AdmitResult, { ok: true }>;
  /** the most a cut answer with `outputTokens` of output can cost, everything else at its worst case */
  boundCost: (outputTokens: number) => number;
  /** the same bound in tokens: the input bound plus `outputTokens` (at most the hold's output) */
  boundTokens: (outputTokens: number) => number;
  /** this request's prices (the model's in force at admission, with a picture's size/quality price) */
  prices: Prices | null;
  /** the service tier the request asked for */
  serviceTier: string | null;
  /** the usage, when the request alone fixes it (speech: its characters) */
  knownUsage: Usage | null;
  settlement: Settlement;
  /** what this request's log lines say about it */
  log: RequestLog;
}

/**
 * Steps 1–4 of a proxied request: the credential (refused with no I/O when malformed), the body, the plan (the
 * model's target and the hold's bounds: admission-plan.ts), then one RPC to the key's KeyGuard that authenticates,
 * applies every rule and places the hold, and the body that goes upstream (body-rewrite.ts). Refusals are thrown
 * as ApiErrors in the key's dialect (set on the context once known).
 */
export async function admit(c: Context<AppEnv>, route: RouteSpec): Promise<Admitted> {
  const started = Date.now();
  const env = c.env;
  const config = gatewayConfig(env);
  const log = c.get("log") ?? { request_id: c.get("requestId"), route: route.endpoint };
  const key = spendKeyFrom(c.req.raw.headers);
  const spendKeyId = key ? parseKey("spend", key) : null;
  if (!key || !spendKeyId) {
    throw new ApiError("invalid_api_key", INVALID_API_KEY_MESSAGE, { headers: { "x-spendgate-limit": "key" } });
  }
  log.spend_key_id = spendKeyId;

  // The secret's hash is computed while the body arrives.
  const secretHash = hashSecret(key);
  const bytes = await c.req.raw.arrayBuffer();
  const body = await readBody(bytes, c.req.header("content-type") ?? "", route);
  log.model = body.model.slice(0, 200);
  const catalog = await getCatalog(controlD1(env), (p) => c.executionCtx.waitUntil(p));
  const plan = planAdmission(config, route, body, bytes.byteLength, c.req.raw.headers, catalog, started);
  if (plan.guardTarget) log.provider = plan.guardTarget.provider;

  const guard = keyGuard(env, spendKeyId);
  const metered = route.kind !== "count_tokens";
  const metadata = metadataFrom(c.req.raw.headers);
  const run = runFrom(c.req.raw.headers, metadata);
  const admission = await guard.admit({
    requestId: c.get("requestId"),
    endpoint: route.endpoint,
    stream: body.stream,
    metadata,
    ...(run === undefined ? {} : { run }),
    secretHash: await secretHash,
    routeShape: route.shape,
    model: body.model,
    target: plan.guardTarget,
    ...(plan.unavailable ? { unavailable: plan.unavailable } : {}),
    metered,
    maxInflight: config.maxInflightPerKey,
    holdTtlMs: config.holdTtlMs,
  });
  if (admission.shape) c.set("dialect", admission.shape);
  if (admission.walletId) log.wallet_id = admission.walletId;
  if (!admission.ok) throw refusal(admission);
  const settlement = new Settlement(guard, c.get("requestId"), started, log);
  // The guard refuses unknown and unavailable targets, so an admitted request has a ready one; were it not so,
  // the hold is released rather than left to expire.
  const { target, bounds } = plan;
  if (target.kind !== "ready" || !bounds) {
    await settlement.settle({ status: "error", usage: null, fallbackNanos: 0, responseId: null, httpStatus: null });
    throw new ApiError("internal_error", "The gateway hit an internal error. Try again.");
  }
  const { outBody, boundCost, boundTokens } = rewriteBody({ ...plan, bounds }, body.json, bytes, admission);
  return {
    target,
    outBody,
    stripUsageChunk: plan.stripUsageChunk,
    metered,
    admission,
    boundCost,
    boundTokens,
    settlement,
    prices: plan.prices,
    serviceTier: bounds.serviceTier,
    knownUsage: plan.knownUsage,
    log,
  };
}

/** The body as JSON or a form; a transcription must be a form (its audio is measured there). */
async function readBody(bytes: ArrayBuffer, contentType: string, route: RouteSpec): Promise<ParsedBody> {
  const body = contentType.startsWith("multipart/form-data")
    ? await parseForm(bytes, contentType, route.defaultModel)
    : parseBody(bytes, route.defaultModel);
  if (route.kind === "transcriptions" && !body.file) {
    throw new ApiError("invalid_request", "file: a file is required, sent as multipart/form-data.", { param: "file" });
  }
  return body;
}

/** A guard's refusal as the error the client gets, with its retry headers. */
function refusal(r: Extract<AdmitResult, { ok: false }>): ApiError {
  // Which limit refused, in a header a client can branch on without parsing the body (a bad key says only "key").
  const headers: Record<string, string> = { "x-spendgate-limit": r.limit };
  if (r.terminal) headers["x-should-retry"] = "false";
  headers["x-spendgate-limit"] = r.limit;
  if (r.retryAfterMs !== undefined) {
    headers["retry-after"] = String(Math.ceil(r.retryAfterMs / 1000));
    if (!r.terminal) headers["retry-after-ms"] = String(r.retryAfterMs);
  }
  return new ApiError(r.code, r.message, { headers, limit: r.limit, ...(r.details ? { details: r.details } : {}) });
}
