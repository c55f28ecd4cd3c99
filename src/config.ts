import { PROVIDERS, type ProviderId } from "./providers/registry.ts";

/**
 * The gateway's settings and secrets, parsed once per environment from its vars (wrangler.toml `[vars]`, Worker
 * secrets, `.dev.vars`) with their defaults — the one place any of them is read — and checked together: a
 * deployment with settings that break a promise refuses to serve (every request answers 500 and the log says which
 * setting is wrong) rather than serve unsafely.
 */
export interface GatewayConfig {
  /** the largest gateway request body (413 above) */
  maxBodyBytes: number;
  /** the longest the provider may take, first byte to last (also a stream's longest run) */
  upstreamTimeoutMs: number;
  /** requests of one key in flight at once (429 above) */
  maxInflightPerKey: number;
  /** how long a hold waits for its settle before the KeyGuard's alarm charges it in full */
  holdTtlMs: number;
  /** after a client leaves a stream, how long the gateway reads on to learn the usage */
  disconnectDrainMs: number;
  /** `SPENDGATE_ENV=production`: https-only provider and webhook URLs, no development webhook key */
  production: boolean;
  /** raw ledger rows older than this many whole UTC days (before today) leave D1 for the R2 archive */
  retentionDays: number;
  /** and, whichever binds first, the oldest days leave once the raw rows would take more than this (bytes) */
  retentionMaxBytes: number;
  /** `ADMIN_TOKEN`: the operator API's bearer token; null turns the operator API off */
  adminToken: string | null;
  /** `WEBHOOK_SECRET_KEY`: seals stored webhook signing secrets; null (outside production: a fixed dev key) */
  webhookSecretKey: string | null;
  /** `WEBHOOK_SECRET_KEY_PREVIOUS`: the key being rotated out, still accepted to open secrets */
  webhookSecretKeyPrevious: string | null;
  /** `WEBHOOK_RETRY_DELAYS` (comma-separated seconds): the waits after each failed delivery attempt */
  webhookRetryDelaysS: number[];
  /** each provider's `<NAME>_API_KEY` (null: not configured) and `<NAME>_BASE_URL` (default: its official URL) */
  providers: Record<ProviderId, { apiKey: string | null; baseUrl: string }>;
}

/**
 * Retries after a failed webhook attempt, in seconds: the Standard Webhooks schedule (5 s, 5 min, 30 min, 2 h, 5 h,
 * 10 h, 10 h — about 27.5 hours in all); after the last one the delivery is dead.
 */
export const WEBHOOK_RETRY_DELAYS_S = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];

/** The numeric vars, their defaults and the smallest value each accepts. */
export const NUMERIC_VARS = {
  MAX_BODY_BYTES: { key: "maxBodyBytes", fallback: 32 * 1024 * 1024, min: 1 },
  UPSTREAM_TIMEOUT_MS: { key: "upstreamTimeoutMs", fallback: 600_000, min: 1 },
  MAX_INFLIGHT_PER_KEY: { key: "maxInflightPerKey", fallback: 256, min: 1 },
  HOLD_TTL_MS: { key: "holdTtlMs", fallback: 900_000, min: 1 },
  DISCONNECT_DRAIN_MS: { key: "disconnectDrainMs", fallback: 30_000, min: 0 },
  RETENTION_DAYS: { key: "retentionDays", fallback: 30, min: 1 },
  RETENTION_MAX_BYTES: { key: "retentionMaxBytes", fallback: 3_000_000_000, min: 1 },
} as const satisfies Record<string, { key: keyof GatewayConfig; fallback: number; min: number }>;

export class ConfigError extends Error {}

const parsed = new WeakMap<object, GatewayConfig>();

/** `env`: the Worker's bindings (typed loosely so Node scripts can import the var names without Worker types). */
export function gatewayConfig(env: object): GatewayConfig {
  let config = parsed.get(env);
  if (!config) {
    config = parse(env as unknown as Record<string, unknown>);
    parsed.set(env, config);
  }
  return config;
}

function parse(env: Record<string, unknown>): GatewayConfig {
  const production = env.SPENDGATE_ENV === "production";
  const out = { production } as GatewayConfig;
  for (const [name, spec] of Object.entries(NUMERIC_VARS)) {
    const raw = env[name];
    const value = raw === undefined || raw === "" ? spec.fallback : Number(raw);
    if (!Number.isSafeInteger(value) || value < spec.min) {
      throw new ConfigError(`${name} must be a whole number ≥ ${spec.min}; it is ${JSON.stringify(raw)}.`);
    }
    (out as unknown as Record<string, number>)[spec.key] = value;
  }
  // An empty secret counts as none (a copied `.dev.vars.example` leaves them empty).
  const text = (name: string) => (typeof env[name] === "string" && env[name] !== "" ? (env[name] as string) : null);
  out.adminToken = text("ADMIN_TOKEN");
  out.webhookSecretKey = text("WEBHOOK_SECRET_KEY");
  out.webhookSecretKeyPrevious = text("WEBHOOK_SECRET_KEY_PREVIOUS");
  out.webhookRetryDelaysS = retryDelays(text("WEBHOOK_RETRY_DELAYS"));
  out.providers = Object.fromEntries(
    Object.values(PROVIDERS).map((p) => [
      p.id,
      { apiKey: text(p.apiKeyVar), baseUrl: text(p.baseUrlVar) ?? p.defaultBaseUrl },
    ]),
  ) as GatewayConfig["providers"];
  // A hold must outlive the longest exchange (the upstream deadline, then the drain after a client leaves):
  // otherwise the alarm could charge a hold in full while its request is still running, and charge it twice.
  if (out.holdTtlMs <= out.upstreamTimeoutMs + out.disconnectDrainMs) {
    throw new ConfigError(
      `HOLD_TTL_MS (${out.holdTtlMs}) must exceed UPSTREAM_TIMEOUT_MS + DISCONNECT_DRAIN_MS ` +
        `(${out.upstreamTimeoutMs + out.disconnectDrainMs}).`,
    );
  }
  return out;
}

function retryDelays(raw: string | null): number[] {
  if (raw === null) return WEBHOOK_RETRY_DELAYS_S;
  const delays = raw.split(",").map(Number);
  if (!delays.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new ConfigError(
      `WEBHOOK_RETRY_DELAYS must be comma-separated whole seconds ≥ 0; it is ${JSON.stringify(raw)}.`,
    );
  }
  return delays;
}
