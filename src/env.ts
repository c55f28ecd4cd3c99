import type { KeyGuard } from "./guard/key-guard.ts";

/** Secrets are not in wrangler.toml, so `wrangler types` cannot see them; they are declared here. */
export interface Secrets {
  ADMIN_TOKEN?: string;
  OPENAI_API_KEY?: string;
  ANTHROPIC_API_KEY?: string;
  GOOGLE_API_KEY?: string;
  MISTRAL_API_KEY?: string;
  GROQ_API_KEY?: string;
  DEEPSEEK_API_KEY?: string;
  XAI_API_KEY?: string;
  TOGETHER_API_KEY?: string;
  FIREWORKS_API_KEY?: string;
}

export type Bindings = Env & Secrets;

export interface AppEnv {
  Bindings: Bindings;
  Variables: {
    requestId: string;
    /** set by the wallet-key middleware on management routes */
    walletId: string;
  };
}

/** The KeyGuard of a spend key: one Durable Object per key, addressed by the key's public id. */
export function keyGuard(env: Env, spendKeyId: string): DurableObjectStub<KeyGuard> {
  return env.KEY_GUARD.getByName(spendKeyId);
}
