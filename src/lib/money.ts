/**
 * Money is integers inside, exact decimal strings outside.
 *
 * - Balances, limits, holds and charges are integer **nano-dollars** (1e-9 USD) held in JS numbers
 *   (exact up to 2^53 nano-dollars ≈ $9,007,199).
 * - Prices are integer nano-dollars per their unit (per 1M tokens, per 1,000 searches…); the exact cost of a
 *   request is computed in exact integers (catalog/pricing.ts) and shown in femto-dollars (1e-15 USD) in the ledger.
 * - A request is charged its exact cost rounded **up** to the next nano-dollar (at most 1 nano-dollar per
 *   request).
 */

export const NANOS_PER_USD = 1_000_000_000;

// At most $999,999.999999999: every amount stays an exact JS integer in nano-dollars.
const DECIMAL = /^(0|[1-9]\d{0,5})(?:\.(\d{1,9}))?$/;

/** Parses a USD decimal string ("50", "0.15", "0.000000001") into nano-dollars; null when not exact/valid. */
export function parseUsd(text: string): number | null {
  const m = DECIMAL.exec(text);
  if (!m) return null;
  const whole = Number(m[1]);
  const frac = Number((m[2] ?? "").padEnd(9, "0"));
  return whole * NANOS_PER_USD + frac;
}

/** Formats nano-dollars as a decimal string with at least 2 decimals and no trailing zeros beyond them. */
export function formatUsd(nanos: number | bigint): string {
  // A safe integer splits exactly in doubles: no BigInt for the two amounts every answer's headers carry.
  if (typeof nanos === "number" && Number.isSafeInteger(nanos)) {
    const abs = Math.abs(nanos);
    const frac = abs % NANOS_PER_USD;
    return decimalString(nanos < 0, String((abs - frac) / NANOS_PER_USD), String(frac), 9);
  }
  return formatScaled(BigInt(nanos), 9);
}

/** Formats femto-dollars (1e-15 USD) exactly. */
export function formatFemtoUsd(femtos: bigint): string {
  return formatScaled(femtos, 15);
}

function formatScaled(value: bigint, decimals: number): string {
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const scale = 10n ** BigInt(decimals);
  return decimalString(negative, String(abs / scale), String(abs % scale), decimals);
}

/** `whole.frac` with `frac` (its digits without leading zeros) padded to `decimals`, then trimmed to ≥ 2. */
function decimalString(negative: boolean, whole: string, frac: string, decimals: number): string {
  let digits = frac.padStart(decimals, "0").replace(/0+$/, "");
  if (digits.length < 2) digits = digits.padEnd(2, "0");
  return `${negative ? "-" : ""}${whole}.${digits}`;
}
