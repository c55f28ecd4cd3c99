import type { Context } from "hono";
import { INTERNAL_HEADER, INTERNAL_WALLET_HEADER, internalToken } from "../wallets/auth.ts";
import type { DashboardEnv } from "./env.ts";

/**
 * The dashboard is a client of the management API, called in-process: every page reads and writes through the
 * same routes, validation and errors as the Lava SDK does, as its session's wallet (the internal credential of
 * wallets/auth.ts).
 */

type Fetch = (
  request: Request,
  env: DashboardEnv["Bindings"],
  ctx: Context["executionCtx"],
) => Response | Promise<Response>;
let managementFetch: Fetch | undefined;

/** Set once by app.ts (the dashboard's routes are part of the app they call). */
export function useManagementFetch(f: Fetch): void {
  managementFetch = f;
}

export interface ApiResult<T> {
  status: number;
  ok: boolean;
  body: T;
  /** an error's message and the field it names, when it has one */
  error?: { message: string; param: string | null };
}

export async function api<T>(
  c: Context<DashboardEnv>,
  walletId: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiResult<T>> {
  if (!managementFetch) throw new Error("the dashboard's API client is not wired");
  const headers: Record<string, string> = {
    [INTERNAL_HEADER]: internalToken(),
    [INTERNAL_WALLET_HEADER]: walletId,
  };
  if (body !== undefined) headers["content-type"] = "application/json";
  const request = new Request(new URL(`/v1${path}`, c.req.url), {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const res = await managementFetch(request, c.env, c.executionCtx);
  const parsed = (await res.json()) as T & { error?: { message?: unknown; param?: unknown } };
  const error = res.ok
    ? undefined
    : {
        message: String(parsed.error?.message ?? res.status),
        param: typeof parsed.error?.param === "string" ? parsed.error.param : null,
      };
  return { status: res.status, ok: res.ok, body: parsed as T, ...(error ? { error } : {}) };
}
