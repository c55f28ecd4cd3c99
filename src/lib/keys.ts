/**
 * Credentials. Every key kind has a recognisable prefix, embeds its public id, and ends in a CRC-32
 * checksum so a mistyped or garbage key is refused before any I/O. Only SHA-256 hashes are stored:
 * the secrets carry ≥ 143 bits from crypto.getRandomValues, so a plain hash is enough (no password KDF).
 *
 *   spend key:          sk-sg-<16 id chars>_<24 secret chars><6 checksum chars>    id = spk_<16 id chars>
 *   wallet secret key:  sgw_<16 id chars>_<24 secret chars><6 checksum chars>      id = wsk_<16 id chars>
 */

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ID_LEN = 16;
const SECRET_LEN = 24;
const CHECK_LEN = 6;

export type KeyKind = "spend" | "wallet";

const KINDS: Record<KeyKind, { prefix: string; idPrefix: string }> = {
  spend: { prefix: "sk-sg-", idPrefix: "spk_" },
  wallet: { prefix: "sgw_", idPrefix: "wsk_" },
};

const BODY = new RegExp(`^([0-9A-Za-z]{${ID_LEN}})_([0-9A-Za-z]{${SECRET_LEN}})([0-9A-Za-z]{${CHECK_LEN}})$`);

/** One encoder and one decoder for the isolate (both keep no state): no new runtime object per request. */
const encoder = new TextEncoder();
const ascii = new TextDecoder();
const ALPHABET_BYTES = encoder.encode(ALPHABET);

/**
 * Scratch bytes for the functions below, which fill and read them without yielding: allocated once, because
 * they run on every request (its id, its key's hash) and every typed array the runtime reads is one more
 * object for the garbage collector to track.
 */
const scratch = { random: new Uint8Array(128), text: new Uint8Array(64), key: new Uint8Array(256) };

/**
 * Random base62 string (up to 64 characters); rejection sampling keeps every character uniform. Built as bytes
 * and decoded once: a string grown a character at a time allocates one string per character.
 */
export function randomBase62(length: number): string {
  if (length > scratch.text.length) throw new RangeError("randomBase62: at most 64 characters");
  const out = scratch.text.subarray(0, length);
  let n = 0;
  while (n < length) {
    const random = crypto.getRandomValues(scratch.random);
    for (let i = 0; i < random.length && n < length; i++) {
      const b = random[i] as number;
      if (b < 248) out[n++] = ALPHABET_BYTES[b % 62] as number;
    }
  }
  return ascii.decode(out);
}

/** Opaque public id with a type prefix, e.g. `wal_…`, `req_…`. */
export function newId(prefix: string, length = 20): string {
  return `${prefix}_${randomBase62(length)}`;
}

let crcTable: Uint32Array | undefined;
function crc32(text: string): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) crc = (crcTable[(crc ^ text.charCodeAt(i)) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function checksum(text: string): string {
  let n = crc32(text);
  let out = "";
  for (let i = 0; i < CHECK_LEN; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

export interface IssuedKey {
  id: string;
  key: string;
}

export function issueKey(kind: KeyKind, existingId?: string): IssuedKey {
  const { prefix, idPrefix } = KINDS[kind];
  const idBody = existingId ? existingId.slice(idPrefix.length) : randomBase62(ID_LEN);
  const head = `${prefix}${idBody}_${randomBase62(SECRET_LEN)}`;
  return { id: `${idPrefix}${idBody}`, key: head + checksum(head) };
}

/** Returns the embedded public id when the key is well formed and its checksum matches; no I/O. */
export function parseKey(kind: KeyKind, key: string): string | null {
  const { prefix, idPrefix } = KINDS[kind];
  if (!key.startsWith(prefix)) return null;
  const m = BODY.exec(key.slice(prefix.length));
  if (!m) return null;
  if (checksum(key.slice(0, -CHECK_LEN)) !== m[3]) return null;
  return `${idPrefix}${m[1]}`;
}

/** Whether `id` has the shape of a public id of this kind (checked before any I/O on a path parameter). */
export function isKeyId(kind: KeyKind, id: string): boolean {
  const { idPrefix } = KINDS[kind];
  return (
    id.startsWith(idPrefix) &&
    /^[0-9A-Za-z]+$/.test(id.slice(idPrefix.length)) &&
    id.length === idPrefix.length + ID_LEN
  );
}

export function keyKindOf(key: string): KeyKind | null {
  if (key.startsWith(KINDS.spend.prefix)) return "spend";
  if (key.startsWith(KINDS.wallet.prefix)) return "wallet";
  return null;
}

const HEX_DIGITS = encoder.encode("0123456789abcdef");

/**
 * The secret's SHA-256 as lowercase hex, written as bytes and decoded once (hashing runs on every request). A key
 * is encoded into scratch bytes (the runtime hashes them before `digest` returns its promise): one array buffer
 * less per request, and every array buffer is one more for each young-generation collection to sweep. Longer
 * secrets (an operator's token) get bytes of their own.
 */
export async function hashSecret(key: string): Promise<string> {
  const { read, written } = encoder.encodeInto(key, scratch.key);
  const bytes = read === key.length ? scratch.key.subarray(0, written) : encoder.encode(key);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hex = scratch.text;
  for (let i = 0; i < digest.length; i++) {
    const b = digest[i] as number;
    hex[2 * i] = HEX_DIGITS[b >> 4] as number;
    hex[2 * i + 1] = HEX_DIGITS[b & 15] as number;
  }
  return ascii.decode(hex);
}

/**
 * Constant-time comparison of two hex digests: every character is visited whatever differs. Compared as strings
 * (no encoded copies) because the KeyGuard runs it on every request.
 */
export function hashesEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Prefix and last 4 characters only, e.g. `sk-sg-…Xy12`. */
export function keyPreview(key: string): string {
  const prefix = key.startsWith(KINDS.spend.prefix) ? KINDS.spend.prefix : KINDS.wallet.prefix;
  return `${prefix}…${key.slice(-4)}`;
}
