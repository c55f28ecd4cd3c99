import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { DashboardEnv, Flash } from "./env.ts";
import { SESSION_COOKIE } from "./session.ts";

/**
 * What one page tells the next after a POST redirects (post-redirect-get): a confirmation ("Key paused"), and
 * for a create or a rotation the one-time secret. It travels in a cookie of its own — `HttpOnly`,
 * `SameSite=Strict`, five minutes — sealed (AES-GCM) with a key derived from the session id, so it is useless
 * without the session and never appears in a URL, a log or D1. The next signed-in page reads it and deletes it:
 * a reload of that page finds nothing, shows no secret and creates nothing.
 */

export const FLASH_COOKIE = "sg_flash";
const TTL_SECONDS = 300;

const local = (c: Context<DashboardEnv>) => ["localhost", "127.0.0.1", "[::1]"].includes(new URL(c.req.url).hostname);

async function sealKey(c: Context<DashboardEnv>): Promise<CryptoKey | null> {
  const session = getCookie(c, SESSION_COOKIE);
  if (!session) return null;
  const raw = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`flash:${session}`));
  return crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
}

const b64 = (b: Uint8Array) =>
  btoa(String.fromCharCode(...b))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
const unb64 = (s: string) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (ch) => ch.charCodeAt(0));

export async function setFlash(c: Context<DashboardEnv>, flash: Flash): Promise<void> {
  const key = await sealKey(c);
  if (!key) return;
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const plain = new TextEncoder().encode(JSON.stringify({ ...flash, exp: Date.now() + TTL_SECONDS * 1000 }));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, plain));
  setCookie(c, FLASH_COOKIE, `${b64(iv)}.${b64(sealed)}`, {
    httpOnly: true,
    sameSite: "Strict",
    secure: !local(c),
    path: "/",
    maxAge: TTL_SECONDS,
  });
}

/** The flash the previous POST left, once: reading it deletes it. */
export async function takeFlash(c: Context<DashboardEnv>): Promise<Flash | null> {
  const value = getCookie(c, FLASH_COOKIE);
  if (!value) return null;
  deleteCookie(c, FLASH_COOKIE, { path: "/", secure: !local(c) });
  const key = await sealKey(c);
  const [iv, sealed] = value.split(".");
  if (!key || !iv || !sealed || value.length > 4096) return null;
  try {
    const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: unb64(iv) }, key, unb64(sealed));
    const flash = JSON.parse(new TextDecoder().decode(plain)) as Flash & { exp: number };
    return flash.exp > Date.now() ? flash : null;
  } catch {
    return null;
  }
}
