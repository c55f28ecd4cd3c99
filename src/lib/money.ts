/**
 * Money is integers inside, exact decimal strings outside.
 *
 * - Balances, limits, holds and charges are integer **nano-dollars** (1e-9 USD) held in JS numbers
 *   (exact up to 2^53 nano-dollars ≈ $9,007,199).
 * - Prices are integer nano-dollars **per 1M tokens**, so a token costs price/1e6 nano-dollars: the exact
 *   cost of a request is an integer in femto-dollars (1e-15 USD), computed with BigInt.
 * - A request is charged its exact cost rounded **up** to the next nano-dollar (at most 1 nano-dollar per
 *   request); the per-component costs in the ledger are shown exactly.
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
  const whole = abs / scale;
  let frac = (abs % scale).toString().padStart(decimals, "0").replace(/0+$/, "");
  if (frac.length < 2) frac = frac.padEnd(2, "0");
  return `${negative ? "-" : ""}${whole}.${frac}`;
}

export interface Prices {
  /** nano-dollars per 1M tokens */
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
  /** nano-dollars per 1M image or audio input tokens, where the model prices them apart from text */
  mediaInput?: number;
  /** nano-dollars per unit, for what is priced per image, per second of audio or per character */
  perUnit?: number;
}

export interface TokenUsage {
  /** uncached (text) input tokens */
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  /** image or audio input tokens, priced at `mediaInput` */
  mediaInputTokens?: number;
  /** images, seconds or characters, priced at `perUnit` */
  units?: number;
}

export interface Cost {
  inputFemtos: bigint;
  outputFemtos: bigint;
  /** charged amount: exact total rounded up to a whole nano-dollar */
  totalNanos: number;
}

const FEMTOS_PER_NANO = 1_000_000n;

export function costOf(usage: TokenUsage, prices: Prices): Cost {
  const inputFemtos =
    BigInt(usage.inputTokens) * BigInt(prices.input) +
    BigInt(usage.cacheReadTokens) * BigInt(prices.cacheRead) +
    BigInt(usage.cacheWriteTokens) * BigInt(prices.cacheWrite) +
    BigInt(usage.mediaInputTokens ?? 0) * BigInt(prices.mediaInput ?? prices.input);
  // A unit price is per unit, not per 1M: in femto-dollars it is nanos × 1e6.
  const outputFemtos =
    BigInt(usage.outputTokens) * BigInt(prices.output) +
    BigInt(usage.units ?? 0) * BigInt(prices.perUnit ?? 0) * FEMTOS_PER_NANO;
  const total = inputFemtos + outputFemtos;
  const totalNanos = Number((total + FEMTOS_PER_NANO - 1n) / FEMTOS_PER_NANO);
  return { inputFemtos, outputFemtos, totalNanos };
}

/**
 * What a settled request is charged: its usage at its prices; without usage (a cut stream, a lost settle) the
 * fallback the gateway measured, never more than the hold. The KeyGuard charges it and the Worker reports it
 * (`x-spendgate-cost`) from the same function.
 */
export function chargeFor(
  usage: TokenUsage | null,
  prices: Prices | null,
  holdNanos: number,
  fallbackNanos: number,
): Cost {
  if (usage) return prices ? costOf(usage, prices) : { inputFemtos: 0n, outputFemtos: 0n, totalNanos: 0 };
  return { inputFemtos: 0n, outputFemtos: 0n, totalNanos: Math.min(holdNanos, Math.max(0, fallbackNanos)) };
}

/**
 * Worst case for a hold: every input token at the dearest input rate, every possible output token, and every
 * unit the request can produce.
 */
export function worstCaseNanos(inputTokenBound: number, maxOutputTokens: number, prices: Prices, units = 0): number {
  const inputRate = Math.max(prices.input, prices.cacheWrite, prices.mediaInput ?? 0);
  const femtos =
    BigInt(inputTokenBound) * BigInt(inputRate) +
    BigInt(maxOutputTokens) * BigInt(prices.output) +
    BigInt(units) * BigInt(prices.perUnit ?? 0) * FEMTOS_PER_NANO;
  return Number((femtos + FEMTOS_PER_NANO - 1n) / FEMTOS_PER_NANO);
}
