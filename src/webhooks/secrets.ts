import { ApiError } from "../lib/errors.ts";
import { randomBase62 } from "../lib/keys.ts";

/**
 * Webhook signing secrets must be readable again to sign each delivery, so unlike API keys they cannot be
 * hashed: they are stored encrypted with AES-GCM under `WEBHOOK_SECRET_KEY` (a Worker secret). Development and
 * tests use a fixed local key; production refuses to create webhooks without one.
 */
const DEV_KEY = "spendgate-local-development-webhook-key";

async function aesKey(env: { WEBHOOK_SECRET_KEY?: string; SPENDGATE_ENV?: string }): Promise<CryptoKey> {
  const material = env.WEBHOOK_SECRET_KEY ?? (env.SPENDGATE_ENV === "production" ? undefined : DEV_KEY);
  if (!material) {
    throw new ApiError("admin_disabled", "Webhooks need WEBHOOK_SECRET_KEY: set it with `wrangler secret put`.");
  }
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(material));
  return crypto.subtle.importKey("raw", digest, "AES-GCM", false, ["encrypt", "decrypt"]);
}

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const unb64 = (text: string) => Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));

/** A new Standard Webhooks secret: `whsec_` + base64 of 24 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${b64(crypto.getRandomValues(new Uint8Array(24)))}`;
}

export async function sealSecret(env: Parameters<typeof aesKey>[0], secret: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = new TextEncoder().encode(secret);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await aesKey(env), data));
  return `v1.${b64(iv)}.${b64(sealed)}`;
}

export async function openSecret(env: Parameters<typeof aesKey>[0], cipher: string): Promise<string> {
  const [, iv, sealed] = cipher.split(".");
  if (!iv || !sealed) throw new Error("malformed webhook secret cipher");
  const key = await aesKey(env);
  const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: unb64(iv) }, key, unb64(sealed));
  return new TextDecoder().decode(plain);
}

/** Ids for events and deliveries. */
export const eventId = () => `evt_${randomBase62(24)}`;
