/**
 * The gateway's settings, parsed once per environment from its vars (wrangler.toml `[vars]`, `.dev.vars`) with
 * their defaults, and checked together: a deployment with settings that break a promise refuses to serve
 * (every request answers 500 and the log says which setting is wrong) rather than serve unsafely.
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
  /** `SPENDGATE_ENV=production`: https-only provider URLs, no bench knobs */
  production: boolean;
  /**
   * Bench only (ignored in production): a simulated distance, in ms, added to every KeyGuard RPC, to show what
   * one round trip instead of two saves when the key's Durable Object is far away.
   */
  guardDelayMs: number;
  /** raw ledger rows older than this many whole UTC days (before today) leave D1 for the R2 archive */
  retentionDays: number;
  /** and, whichever binds first, the oldest days leave once the raw rows would take more than this (bytes) */
  retentionMaxBytes: number;
}

/** The numeric vars, their defaults and the smallest value each accepts. */
export const NUMERIC_VARS = {
  MAX_BODY_BYTES: { key: "maxBodyBytes", fallback: 32 * 1024 * 1024, min: 1 },
  UPSTREAM_TIMEOUT_MS: { key: "upstreamTimeoutMs", fallback: 600_000, min: 1 },
  MAX_INFLIGHT_PER_KEY: { key: "maxInflightPerKey", fallback: 256, min: 1 },
  HOLD_TTL_MS: { key: "holdTtlMs", fallback: 900_000, min: 1 },
  DISCONNECT_DRAIN_MS: { key: "disconnectDrainMs", fallback: 30_000, min: 0 },
  GUARD_DELAY_MS: { key: "guardDelayMs", fallback: 0, min: 0 },
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
  if (production) out.guardDelayMs = 0;
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
