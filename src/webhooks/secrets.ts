import { and, asc, count, eq, gt, notLike } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { gatewayConfig } from "../config.ts";
import { type Db, database, walletD1s } from "../db/client.ts";
import { webhooks } from "../db/schema.ts";
import { ApiError } from "../lib/errors.ts";
import { randomBase62 } from "../lib/keys.ts";

/**
 * Webhook signing secrets must be readable again to sign each delivery, so unlike API keys they cannot be
 * hashed: they are stored encrypted with AES-GCM under `WEBHOOK_SECRET_KEY` (a Worker secret). Development and
 * tests use a fixed local key; production refuses to create webhooks without one (an empty one counts as none).
 *
 * Rotation (docs/deploy.md): set the new key as `WEBHOOK_SECRET_KEY` and the old one as
 * `WEBHOOK_SECRET_KEY_PREVIOUS`; both open secrets meanwhile, `POST /admin/webhook-secrets/reencrypt` seals every
 * stored secret again under the new key (a bounded step a call), then the previous key can be deleted.
 */
const DEV_KEY = "spendgate-local-development-webhook-key";

/** The bindings the secrets' keys are read from (config.ts parses them). */
export type SecretKeyEnv = object;

interface SealingKey {
  /** names the key in each cipher without revealing it (a separate digest, 48 bits) */
  id: string;
  key: CryptoKey;
}

const derived = new Map<string, Promise<SealingKey>>();
const utf8 = (text: string) => new TextEncoder().encode(text);

function derive(material: string): Promise<SealingKey> {
  let found = derived.get(material);
  if (!found) {
    found = (async () => {
      const digest = await crypto.subtle.digest("SHA-256", utf8(material));
      const key = await crypto.subtle.importKey("raw", digest, "AES-GCM", false, ["encrypt", "decrypt"]);
      const tag = new Uint8Array(await crypto.subtle.digest("SHA-256", utf8(`spendgate webhook key id\n${material}`)));
      const id = Array.from(tag.subarray(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
      return { id, key };
    })();
    derived.set(material, found);
  }
  return found;
}

function currentKey(env: SecretKeyEnv): Promise<SealingKey> {
  const cfg = gatewayConfig(env);
  const material = cfg.webhookSecretKey ?? (cfg.production ? undefined : DEV_KEY);
  if (!material) {
    throw new ApiError("admin_disabled", "Webhooks need WEBHOOK_SECRET_KEY: set it with `wrangler secret put`.");
  }
  return derive(material);
}

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const unb64 = (text: string) => Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));

/** A new Standard Webhooks secret: `whsec_` + base64 of 24 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${b64(crypto.getRandomValues(new Uint8Array(24)))}`;
}

/**
 * `v1.<iv>.<sealed>.<key id>`. Releases before rotation wrote and read only the first three parts: they still
 * open what this one seals (a rollback keeps webhooks working), and what they sealed, without a key id, is
 * opened by trying the current key, then the previous one (AES-GCM refuses a wrong key rather than decrypt).
 */
export async function sealSecret(env: SecretKeyEnv, secret: string): Promise<string> {
  const { id, key } = await currentKey(env);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, utf8(secret)));
  return `v1.${b64(iv)}.${b64(sealed)}.${id}`;
}

export async function openSecret(env: SecretKeyEnv, cipher: string): Promise<string> {
  const [, iv, sealed, keyId] = cipher.split(".");
  if (!iv || !sealed) throw new Error("malformed webhook secret cipher");
  const keys = [await currentKey(env)];
  // The key being retired still opens what it sealed until every secret is sealed again under the new one.
  const previous = gatewayConfig(env).webhookSecretKeyPrevious;
  if (previous) keys.push(await derive(previous));
  for (const { id, key } of keys) {
    if (keyId !== undefined && keyId !== id) continue;
    try {
      const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: unb64(iv) }, key, unb64(sealed));
      return new TextDecoder().decode(plain);
    } catch {
      // not sealed under this key
    }
  }
  throw new Error(
    `a webhook secret is sealed under ${keyId ? `key ${keyId}` : "an older key"}, which is neither ` +
      "WEBHOOK_SECRET_KEY nor WEBHOOK_SECRET_KEY_PREVIOUS",
  );
}

export interface ReencryptStep {
  /** secrets sealed again under the current key by this call */
  reencrypted: number;
  /** webhooks whose secret neither key opens (left as they are: rotate their secret to replace it) */
  unreadable: string[];
  /** stored secrets not yet under the current key, the unreadable ones included */
  remaining: number;
  /** pass it back as `cursor` for the next step; null when this step reached the last webhook */
  next_cursor: string | null;
}

/**
 * One bounded step of a key rotation: up to `limit` stored secrets not sealed under the current key (webhooks
 * after `cursor`, in id order across every wallet database, deleted ones included) are opened and sealed again
 * under it. A write applies only if the cipher is still the one read, so a secret its owner rotated meanwhile is
 * never overwritten.
 */
export async function reencryptSecrets(
  env: SecretKeyEnv & { DB: D1Database },
  step: { cursor?: string | undefined; limit: number },
): Promise<ReencryptStep> {
  const { id } = await currentKey(env);
  const stale = notLike(webhooks.secretCipher, `%.${id}`);
  const found = [];
  for (const d1 of walletD1s(env)) {
    const db = database(d1);
    const rows = await db
      .select({ id: webhooks.id, cipher: webhooks.secretCipher })
      .from(webhooks)
      .where(step.cursor ? and(stale, gt(webhooks.id, step.cursor)) : stale)
      .orderBy(asc(webhooks.id))
      .limit(step.limit)
      .all();
    found.push(...rows.map((row) => ({ ...row, db })));
  }
  const rows = found.sort((a, b) => (a.id < b.id ? -1 : 1)).slice(0, step.limit);
  const unreadable: string[] = [];
  const writes = new Map<Db, BatchItem<"sqlite">[]>();
  for (const row of rows) {
    let secret: string;
    try {
      secret = await openSecret(env, row.cipher);
    } catch {
      unreadable.push(row.id);
      continue;
    }
    const cipher = await sealSecret(env, secret);
    const write = row.db
      .update(webhooks)
      .set({ secretCipher: cipher })
      .where(and(eq(webhooks.id, row.id), eq(webhooks.secretCipher, row.cipher)));
    writes.set(row.db, [...(writes.get(row.db) ?? []), write]);
  }
  let reencrypted = 0;
  // One round trip per database.
  for (const [db, [first, ...rest]] of writes) {
    if (first) for (const r of await db.batch([first, ...rest])) reencrypted += r.meta.changes;
  }
  let remaining = 0;
  for (const d1 of walletD1s(env)) {
    remaining += (await database(d1).select({ n: count() }).from(webhooks).where(stale).get())?.n ?? 0;
  }
  return {
    reencrypted,
    unreadable,
    remaining,
    next_cursor: rows.length === step.limit ? (rows[rows.length - 1]?.id ?? null) : null,
  };
}

/** Ids for events and deliveries. */
export const eventId = () => `evt_${randomBase62(24)}`;
