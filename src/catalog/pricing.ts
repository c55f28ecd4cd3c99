import { parseUsd } from "../lib/money.ts";
import { isPartOf, UNITS, type Unit } from "./units.ts";

/**
 * Exact prices and costs. A price is integer nano-dollars per its unit's `per` (per 1M tokens, per 1,000 web
 * searches, per hour of audio…), flat or tiered by the request's total input tokens. Costs are computed with
 * BigInt in ninths of a femto-dollar (every `per` divides 9e6, so every term is an integer there), then rounded
 * up once: to femto-dollars for the ledger's components, to a nano-dollar for the charge.
 */
export type Rate = number | { base: number; tiers: readonly (readonly [start: number, price: number])[] };

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

const NINTHS_PER_FEMTO = 9n;
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
function fraction(decimal: string | undefined): [bigint, bigint] {
  if (decimal === undefined) return [1n, 1n];
  const [whole = "0", frac = ""] = decimal.split(".");
  return [BigInt(whole + frac), 10n ** BigInt(frac.length)];
}

const ceilDiv = (a: bigint, b: bigint) => (a + b - 1n) / b;

interface Priced {
  unit: Unit;
  rate: Rate;
  /** the usage keys of the unit's more specific units (its parts) */
  parts: readonly string[];
}

/**
 * Every unit, most specific first, so a unit is charged for what its priced parts leave, each with its parts:
 * sorted and related once here, not on every cost (the hot path prices each request twice).
 */
const SPECIFIC_FIRST = [...UNITS.values()]
  .sort((a, b) => Object.keys(b.dims).length - Object.keys(a.dims).length || a.usageKey.localeCompare(b.usageKey))
  .map((unit, _, all) => ({
    unit,
    parts: all.filter((other) => other !== unit && isPartOf(other, unit)).map((part) => part.usageKey),
  }));

function pricedUnits(prices: Prices): Priced[] {
  const out: Priced[] = [];
  for (const { unit, parts } of SPECIFIC_FIRST) {
    const rate = prices.rates[unit.priceKey];
    if (rate !== undefined) out.push({ unit, rate, parts });
  }
  return out;
}

/** The exact cost of `usage` at `prices`, for the service tier the provider reports (or the one asked for). */
export function costOf(usage: Usage, prices: Prices, serviceTier?: string | null): Cost {
  const units = pricedUnits(prices);
  const input = usage.input_tokens ?? 0;
  const leaf = new Map<string, number>();
  const sums = { input: 0n, output: 0n, fee: 0n };
  for (const { unit, rate, parts } of units) {
    let count = unit.usageKey === "requests" ? 1 : (usage[unit.usageKey] ?? 0);
    // Parts come first in this order, so each priced part's own count is already in `leaf` (unpriced: none).
    for (const part of parts) count -= leaf.get(part) ?? 0;
    count = Math.max(0, count);
    leaf.set(unit.usageKey, count);
    const ninths = BigInt(rateAt(rate, input)) * BigInt(count) * BigInt(9_000_000 / unit.per);
    sums[unit.direction ?? "fee"] += ninths;
  }
  const [num, den] = fraction(serviceTier ? prices.serviceTiers?.[serviceTier] : undefined);
  const scaled = (v: bigint) => (v * num) / den;
  const exact = { input: scaled(sums.input), output: scaled(sums.output), fee: scaled(sums.fee) };
  return {
    inputFemtos: ceilDiv(exact.input, NINTHS_PER_FEMTO),
    outputFemtos: ceilDiv(exact.output, NINTHS_PER_FEMTO),
    feeFemtos: ceilDiv(exact.fee, NINTHS_PER_FEMTO),
    totalNanos: Number(ceilDiv(ceilDiv((sums.input + sums.output + sums.fee) * num, den), NINTHS_PER_NANO)),
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

/** A worst case as `fixed + perOutputToken × outputTokens`, in ninths of a femto-dollar before the tier multiplier. */
function worstParts(w: WorstCase, prices: Prices): { fixed: bigint; perToken: bigint } {
  let inputRate = 0;
  let outputRate = 0;
  let fixed = 0n;
  for (const { unit, rate } of pricedUnits(prices)) {
    const r = rateAt(rate, w.inputTokens);
    if (unit.dims.family === "tokens") {
      if (unit.direction === "input") inputRate = Math.max(inputRate, r);
      else outputRate = Math.max(outputRate, r);
      continue;
    }
    const count = unit.usageKey === "requests" ? 1 : (w.counts[unit.usageKey] ?? 0);
    fixed += BigInt(r) * BigInt(count) * BigInt(9_000_000 / unit.per);
  }
  const nine = 9n; // per-token rates are per 1M tokens: 9e6 / 1e6
  fixed += BigInt(inputRate) * BigInt(w.inputTokens) * nine;
  fixed += BigInt(outputRate) * BigInt(w.extraOutputTokens) * nine;
  return { fixed, perToken: BigInt(outputRate) * BigInt(w.choices) * nine };
}

export function worstCaseNanos(w: WorstCase, prices: Prices): number {
  const { fixed, perToken } = worstParts(w, prices);
  const [num, den] = fraction(w.serviceTier ? prices.serviceTiers?.[w.serviceTier] : undefined);
  return Number(ceilDiv(ceilDiv((fixed + perToken * BigInt(w.outputTokens)) * num, den), NINTHS_PER_NANO));
}

/**
 * The most output tokens per choice that `availableNanos` affords with everything else at its worst case
 * (0 when not even the input fits).
 */
export function affordableOutputTokens(w: WorstCase, prices: Prices, availableNanos: number): number {
  const { fixed, perToken } = worstParts(w, prices);
  const [num, den] = fraction(w.serviceTier ? prices.serviceTiers?.[w.serviceTier] : undefined);
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
