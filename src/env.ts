import type { Dialect } from "./lib/errors.ts";
import type { RequestLog } from "./lib/log.ts";
import type { ProviderVars } from "./providers/registry.ts";

/**
 * What `wrangler types` cannot see: secrets (never in wrangler.toml) and the provider vars, which the provider
 * registry names (each `<NAME>_BASE_URL` defaults to the provider's official URL).
 */
export type Secrets = { ADMIN_TOKEN?: string } & ProviderVars;

export type Bindings = Env & Secrets;

/** What every route has: the request's id, and the dialect its errors are rendered in. */
export interface BaseVariables {
  requestId: string;
  /** the key's dialect once it is known, else the route's (OpenAI by default) */
  dialect: Dialect;
  /** on a proxied route: what its log lines say about the request, filled in as admission learns it */
  log?: RequestLog;
}

/** The gateway's and the operator API's environment. Each sub-app that sets more says so in its own type. */
export interface AppEnv {
  Bindings: Bindings;
  Variables: BaseVariables;
}

/** Routes behind the wallet-key check (wallets/auth.ts › requireWallet), which sets the caller's wallet. */
export interface WalletEnv {
  Bindings: Bindings;
  Variables: BaseVariables & { walletId: string };
}
