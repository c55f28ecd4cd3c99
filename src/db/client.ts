import { drizzle } from "drizzle-orm/d1";
import * as schema from "./schema.ts";

export type Db = ReturnType<typeof database>;

export function database(d1: D1Database) {
  return drizzle(d1, { schema });
}

/**
 * Which D1 database holds what. Every query names one of these three, so spreading wallets over several databases
 * (docs/architecture.md › Past one database) is a change of this module: today all three are the one `DB`.
 */
interface D1Env {
  DB: D1Database;
}

/** The database holding what a wallet owns: its spend keys, ledger, rollups, webhooks and deliveries. */
export function walletD1(env: D1Env, _walletId: string): D1Database {
  return env.DB;
}

/** The database for what is read before a wallet is known: wallets, their secret keys, sessions, price overrides. */
export function controlD1(env: D1Env): D1Database {
  return env.DB;
}

/** Every database holding wallet data, for the jobs that visit them all (retention, the delivery sweeper). */
export function walletD1s(env: D1Env): D1Database[] {
  return [env.DB];
}
