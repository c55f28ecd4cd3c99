import type { Rate } from "../db/schema.ts";
import { parseUsd } from "../lib/money.ts";
import { isPartOf, UNITS, type Unit } from "./units.ts";

export type { Rate };

/** A model's prices in force for one request: price key → rate, and service-tier multipliers where known. */
export interface Prices {
  rates: Readonly<Record<string, Rate>>;
  /** multiplier per OpenAI `service_tier` (decimal strings); a tier not listed is priced as standard */
  serviceTiers?: Readonly<Record<string, string>>;
}

/** What a response reports, by usage key (`input_tokens` is the total input, cache reads and writes included). */
export type Usage = Record<string, number>;

export interface Cost {
  inputFemtos: bigint;
  outputFemtos: bigint;
  /** per-call fees and what is neither input nor output (web searches, audio duration, requests) */
  feeFemtos: bigint;
  /** charged amount: the exact total rounded up to a whole nano-dollar */
  totalNanos: number;
}

/** A USD decimal string as integer nano-dollars (the compiled catalog holds only exact ones). */
export function nanos(usd: string): number {
  const n = parseUsd(usd);
  if (n === null) throw new Error(`not an exact USD amount: ${usd}`);
  return n;
}

const NINTHS_PER_NANO = 9_000_000n;

for (const unit of UNITS.values()) {
  if (9_000_000 % unit.per !== 0) throw new Error(`unit ${unit.usageKey}: per ${unit.per} does not divide 9e6`);
}

/** The rate that applies when the request's input is `inputTokens`: providers bill every token at the tier crossed. */
export function rateAt(rate: Rate, inputTokens: number): number {
  if (typeof rate === "number") return rate;
  let price = rate.base;
  for (const [start, p] of rate.tiers) if (inputTokens > start) price = p;
  return price;
}

/** A tier multiplier as an exact fraction (`"0.5"` → 1/2). */
function fraction(decimal: string): [bigint, bigint] {
  const [whole = "0", frac = ""] = decimal.split(".");
  return [BigInt(whole + frac), 10n ** BigInt(frac.length)];
}

const ceilDiv = (a: bigint, b: bigint) => (a + b - 1n) / b;

/**
 * An amount in ninths of a femto-dollar, exact either way: a double while it is a safe integer (every request
 * the gateway has seen), a BigInt beyond. Doubles spare the hot path a BigInt allocation per operation.
 */
type Ninths = number | bigint;

/** `a + b`, exactly (a double's sum of safe integers is exact when the result is safe). */
function add(a: Ninths, b: Ninths): Ninths {
  if (typeof a === "number" && typeof b === "number" && Number.isSafeInteger(a + b)) return a + b;
  return BigInt(a) + BigInt(b);
}

/**
 * `sum + a × b × c × d`, exactly. A product of integers computed in doubles is exact whenever the result is a safe
 * integer, and one that is not exact comes out beyond the safe range (rounding is monotonic), so checking the
 * result is enough to know the double is right.
 */
function plus(sum: Ninths, a: number, b: number, c: number, d = 1): Ninths {
  const term = a * b * c * d;
  if (Number.isSafeInteger(term)) return add(sum, term);
  return BigInt(sum) + BigInt(a) * BigInt(b) * BigInt(c) * BigInt(d);
}

/** The multiplier of the service tier at `prices` as an exact fraction; null when none applies (× 1). */
function tierOf(prices: Prices, serviceTier: string | null | undefined): [bigint, bigint] | null {
  const multiplier = serviceTier ? prices.serviceTiers?.[serviceTier] : undefined;
  return multiplier === undefined ? null : fraction(multiplier);
}

/** `ceil(v × tier / d)` for a non-negative amount, `tier` the multiplier's fraction (null: 1). */
function scaledCeil(v: Ninths, d: number, tier: [bigint, bigint] | null): bigint | number {
  if (tier === null && typeof v === "number") return (v - (v % d)) / d + (v % d ? 1 : 0);
  const [num, den] = tier ?? [1n, 1n];
  return ceilDiv(ceilDiv(BigInt(v) * num, den), BigInt(d));
}

/**
 * Every unit, most specific first, so a unit is charged for what its priced parts leave, each with its parts
 * (positions in this list): sorted and related once here, not on every cost (the hot path prices each request
 * twice).
 */
const SPECIFIC_FIRST = [...UNITS.values()].sort(
  (a, b) => Object.keys(b.dims).length - Object.keys(a.dims).length || a.usageKey.localeCompare(b.usageKey),
);
const PARTS = SPECIFIC_FIRST.map((unit) =>
  SPECIFIC_FIRST.flatMap((other, i) => (other !== unit && isPartOf(other, unit) ? [i] : [])),
);
/**
 * Each unit's count net of its priced parts, by position: scratch space for `costOf` and `worstParts`, which run
 * synchronously.
 */
const leaf = new Float64Array(SPECIFIC_FIRST.length);

/**
 * The count of the unit at position `i` net of its priced parts, kept in `leaf` for the units it is part of.
 * Parts come first in SPECIFIC_FIRST, so each priced part's own count is already in `leaf` (unpriced: 0).
 */
function netOfParts(i: number, count: number): number {
  let net = count;
  // An index loop: until V8 optimises this function, `for … of` allocates an iterator and a result per part.
  const parts = PARTS[i] as number[];
  for (let p = 0; p < parts.length; p++) net -= leaf[parts[p] as number] as number;
  leaf[i] = Math.max(0, net);
  return leaf[i] as number;
}

/** The exact cost of `usage` at `prices`, for the service tier the provider reports (or the one asked for). */
export function costOf(usage: Usage, prices: Prices, serviceTier?: string | null): Cost {
  const input = usage.input_tokens ?? 0;
  let inputSum: Ninths = 0;
  let outputSum: Ninths = 0;
  let feeSum: Ninths = 0;
  leaf.fill(0);
  for (let i = 0; i < SPECIFIC_FIRST.length; i++) {
    const unit = SPECIFIC_FIRST[i] as Unit;
    const rate = prices.rates[unit.priceKey];
    if (rate === undefined) continue;
    const count = netOfParts(i, unit.usageKey === "requests" ? 1 : (usage[unit.usageKey] ?? 0));
    const r = rateAt(rate, input);
    const k = 9_000_000 / unit.per;
    if (unit.direction === "input") inputSum = plus(inputSum, r, count, k);
    else if (unit.direction === "output") outputSum = plus(outputSum, r, count, k);
    else feeSum = plus(feeSum, r, count, k);
  }
  // Parsed once for the four amounts below.
  const tier = tierOf(prices, serviceTier);
  const total = add(add(inputSum, outputSum), feeSum);
  return {
    inputFemtos: BigInt(scaledCeil(inputSum, 9, tier)),
    outputFemtos: BigInt(scaledCeil(outputSum, 9, tier)),
    feeFemtos: BigInt(scaledCeil(feeSum, 9, tier)),
    totalNanos: Number(scaledCeil(total, 9_000_000, tier)),
  };
}

/** The most a request can be billed, as its hold sizes it (hold.ts). */
export interface WorstCase {
  /** input tokens, each at the dearest input rate (cache writes, 1-hour writes and media included) */
  inputTokens: number;
  /** output tokens per choice, each at the dearest output rate */
  outputTokens: number;
  /** how many answers the request asks for (`n`, `best_of`, prompt batches) */
  choices: number;
  /** output billed beyond the choices' own (rejected prediction tokens) */
  extraOutputTokens: number;
  /** the most of each other unit the request can be billed (web searches, seconds of audio, characters, images) */
  counts: Readonly<Record<string, number>>;
  /** the service tier whose prices apply */
  serviceTier: string | null;
}

/**
 * A worst case as `fixed + outputRate × choices × outputTokens × 9` (per-token rates are per 1M tokens: 9e6 / 1e6),
 * in ninths of a femto-dollar before the tier multiplier.
 */
function worstParts(w: WorstCase, prices: Prices): { fixed: Ninths; outputRate: number } {
  let inputRate = 0;
  let outputRate = 0;
  let fixed: Ninths = 0;
  leaf.fill(0);
  for (let i = 0; i < SPECIFIC_FIRST.length; i++) {
    const unit = SPECIFIC_FIRST[i] as Unit;
    const rate = prices.rates[unit.priceKey];
    if (rate === undefined) continue;
    const r = rateAt(rate, w.inputTokens);
    if (unit.dims.family === "tokens") {
      if (unit.direction === "input") inputRate = Math.max(inputRate, r);
      else outputRate = Math.max(outputRate, r);
      continue;
    }
    // As in costOf: a unit is billed for what its priced parts leave (seconds of input audio are seconds of
    // audio, billed once), so the hold is the cost of its worst usage, not that usage counted twice.
    const count = netOfParts(i, unit.usageKey === "requests" ? 1 : (w.counts[unit.usageKey] ?? 0));
    fixed = plus(fixed, r, count, 9_000_000 / unit.per);
  }
  fixed = plus(fixed, inputRate, w.inputTokens, 9);
  fixed = plus(fixed, outputRate, w.extraOutputTokens, 9);
  return { fixed, outputRate };
}

export function worstCaseNanos(w: WorstCase, prices: Prices): number {
  const { fixed, outputRate } = worstParts(w, prices);
  const total = plus(fixed, outputRate, w.choices, w.outputTokens, 9);
  return Number(scaledCeil(total, 9_000_000, tierOf(prices, w.serviceTier)));
}

/**
 * The most output tokens per choice that `availableNanos` affords with everything else at its worst case
 * (0 when not even the input fits).
 */
export function affordableOutputTokens(w: WorstCase, prices: Prices, availableNanos: number): number {
  const parts = worstParts(w, prices);
  const fixed = BigInt(parts.fixed);
  const perToken = BigInt(parts.outputRate) * BigInt(w.choices) * 9n;
  const [num, den] = tierOf(prices, w.serviceTier) ?? [1n, 1n];
  // (fixed + perToken × k) × num / den ≤ available × 9e6  ⇔  k ≤ (available × 9e6 × den / num − fixed) / perToken
  const budget = (BigInt(Math.max(0, availableNanos)) * NINTHS_PER_NANO * den) / num - fixed;
  if (budget < 0n) return 0;
  if (perToken === 0n) return w.outputTokens;
  const k = budget / perToken;
  return k > BigInt(w.outputTokens) ? w.outputTokens : Number(k);
}

/**
 * What a settled request is charged: its usage at its prices; without usage (a cut stream, a lost settle) the
 * fallback the gateway measured, never more than the hold; nothing when it has no price (a key without a spend
 * limit: its row says why). The KeyGuard charges it and the Worker reports it (`x-spendgate-cost`) with this.
 */
export function chargeFor(
  usage: Usage | null,
  prices: Prices | null,
  holdNanos: number,
  fallbackNanos: number,
  serviceTier?: string | null,
): Cost {
  const zero = { inputFemtos: 0n, outputFemtos: 0n, feeFemtos: 0n };
  if (!prices) return { ...zero, totalNanos: 0 };
  if (usage) return costOf(usage, prices, serviceTier);
  return { ...zero, totalNanos: Math.min(holdNanos, Math.max(0, fallbackNanos)) };
}
