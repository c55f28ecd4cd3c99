import { and, eq, gt, lt } from "drizzle-orm";
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { controlD1, database } from "../db/client.ts";
import { dashboardSessions, signinFailures } from "../db/schema.ts";
import { hashesEqual, hashSecret, randomBase62 } from "../lib/keys.ts";
import type { DashboardEnv, Session } from "./env.ts";

/**
 * Dashboard sessions. Signing in exchanges a wallet secret key (sent once, in a POST body) for an opaque session
 * id in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` outside localhost). Only the id's hash is stored, with
 * its wallet and expiry; signing out deletes it. The secret key itself is never stored, logged or put in a URL.
 */
export const SESSION_COOKIE = "sg_session";
/** How long a sign-in lasts. */
export const SESSION_TTL_MS = 12 * 3_600_000;
/** Failed sign-ins a client may make per window before it must wait. */
export const SIGNIN_FAILURES_ALLOWED = 10;
export const SIGNIN_WINDOW_MS = 15 * 60_000;

const local = (c: Context<DashboardEnv>) => ["localhost", "127.0.0.1", "[::1]"].includes(new URL(c.req.url).hostname);

export async function startSession(c: Context<DashboardEnv>, walletId: string): Promise<void> {
  const id = randomBase62(40);
  const now = Date.now();
  await database(controlD1(c.env))
    .insert(dashboardSessions)
    .values({ idHash: await hashSecret(id), walletId, createdAt: now, expiresAt: now + SESSION_TTL_MS });
  setCookie(c, SESSION_COOKIE, id, {
    httpOnly: true,
    sameSite: "Strict",
    secure: !local(c),
    path: "/",
    maxAge: SESSION_TTL_MS / 1000,
  });
}

/** The signed-in wallet, or null (no cookie, unknown, expired or signed-out session). */
export async function currentSession(c: Context<DashboardEnv>): Promise<Session | null> {
  const id = getCookie(c, SESSION_COOKIE);
  if (!id || id.length > 100) return null;
  const row = await database(controlD1(c.env))
    .select()
    .from(dashboardSessions)
    .where(and(eq(dashboardSessions.idHash, await hashSecret(id)), gt(dashboardSessions.expiresAt, Date.now())))
    .get();
  return row ? { walletId: row.walletId, csrf: await csrfToken(id) } : null;
}

export async function endSession(c: Context<DashboardEnv>): Promise<void> {
  const id = getCookie(c, SESSION_COOKIE);
  if (id) {
    const db = database(controlD1(c.env));
    await db.delete(dashboardSessions).where(eq(dashboardSessions.idHash, await hashSecret(id)));
    // Expired sessions go with any sign-out.
    await db.delete(dashboardSessions).where(lt(dashboardSessions.expiresAt, Date.now()));
  }
  deleteCookie(c, SESSION_COOKIE, { path: "/", secure: !local(c) });
}

/** The CSRF token of a session: derived from its id (which no other site can read), so nothing more is stored. */
async function csrfToken(sessionId: string): Promise<string> {
  return (await hashSecret(`csrf:${sessionId}`)).slice(0, 32);
}

/**
 * A state-changing request must come from our own pages: same-origin by the browser's own word
 * (`Sec-Fetch-Site`, else `Origin`) and carrying the session's CSRF token.
 */
export function trustedPost(c: Context<DashboardEnv>, session: Session, token: unknown): boolean {
  const site = c.req.header("sec-fetch-site");
  const origin = c.req.header("origin");
  const sameOrigin = site ? site === "same-origin" : origin ? origin === new URL(c.req.url).origin : false;
  return sameOrigin && typeof token === "string" && hashesEqual(token, session.csrf);
}

/** Who is signing in, for the failure count: a hash of the client's address (never stored as given). */
async function clientOf(c: Context<DashboardEnv>): Promise<string> {
  return hashSecret(`signin:${c.req.header("cf-connecting-ip") ?? "local"}`);
}

/** Milliseconds until the client may try again, or 0 when it may now. */
export async function signinLockout(c: Context<DashboardEnv>): Promise<number> {
  const row = await database(controlD1(c.env))
    .select()
    .from(signinFailures)
    .where(eq(signinFailures.client, await clientOf(c)))
    .get();
  if (!row || row.failures < SIGNIN_FAILURES_ALLOWED) return 0;
  return Math.max(0, row.windowStart + SIGNIN_WINDOW_MS - Date.now());
}

export async function noteSigninFailure(c: Context<DashboardEnv>): Promise<void> {
  const client = await clientOf(c);
  const now = Date.now();
  const db = database(controlD1(c.env));
  const row = await db.select().from(signinFailures).where(eq(signinFailures.client, client)).get();
  const fresh = !row || now - row.windowStart > SIGNIN_WINDOW_MS;
  const next = fresh ? { client, windowStart: now, failures: 1 } : { ...row, failures: row.failures + 1 };
  await db.insert(signinFailures).values(next).onConflictDoUpdate({ target: signinFailures.client, set: next });
}
