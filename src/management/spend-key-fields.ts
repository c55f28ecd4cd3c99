import { getCatalog } from "../catalog/catalog.ts";
import { controlD1 } from "../db/client.ts";
import type { Bindings } from "../env.ts";
import type { KeyFields } from "../keys/record.ts";
import { ApiError } from "../lib/errors.ts";
import { parseUsd } from "../lib/money.ts";
import type { UpdateSpendKeyBody } from "./schemas.ts";

/** Fields of a create/update body as column values; absent fields stay untouched, `null` clears. */
export async function columnsFrom(env: Bindings, body: UpdateSpendKeyBody): Promise<KeyFields> {
  const cols: KeyFields = {};
  if (body.name !== undefined) cols.name = body.name;
  if (body.status !== undefined) cols.status = body.status;
  if (body.request_shape !== undefined) cols.requestShape = body.request_shape;
  if (body.allowed_models !== undefined) {
    if (body.allowed_models) {
      const catalog = await getCatalog(controlD1(env));
      const unknown = body.allowed_models.find((m) => !catalog.resolve(m));
      if (unknown !== undefined) {
        throw new ApiError(
          "invalid_request",
          `allowed_models: '${unknown}' is not a model in the catalog (GET /v1/models)`,
          {
            param: "allowed_models",
          },
        );
      }
    }
    cols.allowedModels = body.allowed_models ? [...new Set(body.allowed_models)] : null;
  }
  if (body.allowed_providers !== undefined) {
    cols.allowedProviders = body.allowed_providers ? [...new Set(body.allowed_providers)] : null;
  }
  if (body.spend_limit !== undefined) {
    cols.spendLimitNanos = body.spend_limit ? parseUsd(body.spend_limit.amount) : null;
    cols.spendLimitCycle = body.spend_limit?.cycle ?? null;
  }
  if (body.request_limit !== undefined) {
    cols.requestLimitCount = body.request_limit?.count ?? null;
    cols.requestLimitCycle = body.request_limit?.cycle ?? null;
  }
  if (body.token_limit !== undefined) {
    cols.tokenLimitCount = body.token_limit?.count ?? null;
    cols.tokenLimitCycle = body.token_limit?.cycle ?? null;
  }
  if (body.tokens_per_minute !== undefined) cols.tokensPerMinute = body.tokens_per_minute;
  if (body.clamp_output !== undefined) cols.clampOutput = body.clamp_output;
  if (body.run_limit !== undefined) {
    // `{ spend: null, requests: null }` is no run limit at all, as `null` is.
    cols.runSpendLimitNanos = body.run_limit?.spend ? parseUsd(body.run_limit.spend) : null;
    cols.runRequestLimit = body.run_limit?.requests ?? null;
  }
  if (body.rate_limit !== undefined) {
    cols.rateLimitRpm = body.rate_limit?.rpm ?? null;
    cols.rateLimitBurst = body.rate_limit ? (body.rate_limit.burst ?? body.rate_limit.rpm) : null;
  }
  if (body.expires_at !== undefined) cols.expiresAt = body.expires_at === null ? null : Date.parse(body.expires_at);
  if (body.alert_thresholds !== undefined) cols.alertThresholds = body.alert_thresholds;
  if (body.delegation !== undefined) {
    cols.delegationMaxDepth = body.delegation?.max_depth ?? null;
    cols.delegationMaxChildren = body.delegation?.max_children ?? null;
  }
  return cols;
}
