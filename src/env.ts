import type { Session } from "./dashboard/session.ts";
import type { Dialect } from "./lib/errors.ts";
import type { ProviderVars } from "./providers/registry.ts";

/**
 * What `wrangler types` cannot see: secrets (never in wrangler.toml) and the provider vars, which the provider
 * registry names (each `<NAME>_BASE_URL` defaults to the provider's official URL).
 */
export type Secrets = { ADMIN_TOKEN?: string } & ProviderVars & {
    /** the bench's simulated distance to the KeyGuard (config.ts) */
    GUARD_DELAY_MS?: string;
  };

export type Bindings = Env & Secrets;

export interface AppEnv {
  Bindings: Bindings;
  Variables: {
    requestId: string;
    /** set by the wallet-key middleware on management routes */
    walletId: string;
    /** the dialect errors are rendered in: the key's once it is known, else the route's (OpenAI by default) */
    dialect: Dialect;
    /** set by the dashboard's sign-in check on its pages */
    session: Session;
    /** a dashboard POST's form, parsed once by that check */
    form: Record<string, string | File | (string | File)[]>;
  };
}
