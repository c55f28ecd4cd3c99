import type { Context } from "hono";
import type { AppEnv } from "../env.ts";
import { admit, type RouteSpec } from "./admission.ts";
import { exchange } from "./exchange.ts";

/**
 * One proxied request, the hot path (docs/architecture.md): admission (one KeyGuard RPC that authenticates,
 * applies the key's rules and places the hold), then the exchange with the provider, then the settlement.
 * Errors are thrown as ApiErrors and rendered by `app.onError` in the dialect set on the context.
 */
export async function proxy(c: Context<AppEnv>, route: RouteSpec): Promise<Response> {
  const admitted = await admit(c, route);
  // From here the hold must be settled whatever happens to the client: waitUntil keeps the exchange and its
  // settlement running after the answer is returned or the client disconnects.
  const work = exchange(c, route, admitted);
  const settled = () => admitted.settlement.done;
  c.executionCtx.waitUntil(work.then(settled, settled));
  return await work;
}
