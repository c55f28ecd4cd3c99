import { affordableOutputByTokens, worstTokens } from "../catalog/token-count.ts";
import { MIN_CLAMPED_OUTPUT_TOKENS } from "../keys/record.ts";
import { type Cycle, periodEnd } from "../lib/cycles.ts";
import type { ErrorCode, LimitDetails } from "../lib/errors.ts";
import { minuteOf, tokenRoom } from "./counters.ts";
import type { AdmitInput, Counters, HeldTotals, KeyConfig } from "./types.ts";

/**
 * The token limits' admission rule, a pure function like the rest of policy.ts: a request holds its worst-case
 * token count (input bound + output limit × choices + extra output: catalog/token-count.ts) against the cycle's
 * limit (after its tokens and every open hold) and the UTC minute's (after the tokens of the requests admitted in
 * it), so the tokens admitted never pass either limit whatever runs at once. With `clamp_output`, an output limit
 * the tokens left cannot cover is lowered to what they can, down to MIN_CLAMPED_OUTPUT_TOKENS; below that, refused.
 */

export type TokenDecision =
  | { ok: true; holdTokens: number; clampedOutputTokens?: number }
  | {
      ok: false;
      code: Extract<ErrorCode, "token_limit_exceeded" | "token_rate_limit_exceeded">;
      message: string;
      details: LimitDetails;
      terminal?: boolean;
      retryAfterMs?: number;
    };

const MINUTE_MS = 60_000;

/**
 * `output`: the per-choice output limit the spend limit left (the request's own, or the spend clamp's grant); the
 * grant returned is never above it, so the output granted is the smaller of what spend and tokens afford.
 */
export function decideTokens(
  cfg: KeyConfig,
  c: Counters,
  held: HeldTotals,
  target: NonNullable<AdmitInput["target"]>,
  output: number,
  now: number,
): TokenDecision {
  const worst = { ...target.worst, outputTokens: output };
  let holdTokens = worstTokens(worst);
  const room = tokenRoom(cfg, c, held);
  if (room.cycle === null && room.minute === null) return { ok: true, holdTokens };
  const limitRoom = Math.min(room.cycle ?? Number.POSITIVE_INFINITY, room.minute ?? Number.POSITIVE_INFINITY);
  const clamps = target.clampable && cfg.clampOutput;
  let clampedOutputTokens: number | undefined;
  if (clamps && holdTokens > limitRoom) {
    const k = affordableOutputByTokens(worst, limitRoom);
    if (k >= MIN_CLAMPED_OUTPUT_TOKENS && k < output) {
      clampedOutputTokens = k;
      holdTokens = worstTokens({ ...worst, outputTokens: k });
    }
  }
  // The request at its smallest: the least output a clamp grants, or as it is.
  const smallest = clamps
    ? worstTokens({ ...worst, outputTokens: Math.min(MIN_CLAMPED_OUTPUT_TOKENS, output) })
    : holdTokens;
  const ask: TokenAsk = { cfg, c, target, holdTokens, smallest, clamps, now };
  const refused = cycleRefusal(ask, room.cycle) ?? minuteRefusal(ask, room.minute);
  if (refused) return refused;
  return { ok: true, holdTokens, ...(clampedOutputTokens === undefined ? {} : { clampedOutputTokens }) };
}

/** What the two refusals read: the key, its counters, the request's token hold (after any clamp) and its least. */
interface TokenAsk {
  cfg: KeyConfig;
  c: Counters;
  target: NonNullable<AdmitInput["target"]>;
  holdTokens: number;
  smallest: number;
  clamps: boolean;
  now: number;
}
type TokenRefusal = Extract<TokenDecision, { ok: false }>;

/** The least output a clamp would grant a request: 1,024 tokens, or what it asked when that is less. */
export const leastOutput = (target: NonNullable<AdmitInput["target"]>) =>
  Math.min(MIN_CLAMPED_OUTPUT_TOKENS, target.worst.outputTokens);

/** What a refusal advises: a clamping key already tried the least output, so only the limit can change. */
const advice = (clamps: boolean, target: NonNullable<AdmitInput["target"]>) =>
  clamps
    ? `Even ${leastOutput(target)} output tokens do not fit: raise the limit.`
    : "Lower max_tokens or raise the limit.";

/** The cycle's token limit: its tokens, every open hold and this request's never pass it. */
function cycleRefusal({ cfg, c, target, holdTokens, clamps, now }: TokenAsk, room: number | null): TokenRefusal | null {
  if (!cfg.tokenLimit || room === null || (c.currentTokens < cfg.tokenLimit.count && holdTokens <= room)) return null;
  const { count, cycle } = cfg.tokenLimit;
  const end = periodEnd(cycle, now);
  const per = `per ${cycleWord(cycle)}`;
  const message =
    c.currentTokens >= count
      ? `Token limit reached: ${c.currentTokens} of ${count} tokens ${per} used.`
      : `This request's worst case (${holdTokens} tokens${why(target)}) does not fit the token limit: ` +
        `${room} of ${count} tokens ${per} are left. ${advice(clamps, target)}`;
  return {
    ok: false,
    code: "token_limit_exceeded",
    message,
    details: { limit: "tokens", count, current: c.currentTokens, cycle, resets_at: iso(end) },
    terminal: true,
    ...(end === null ? {} : { retryAfterMs: end - now }),
  };
}

/** The UTC minute's token limit: retried next minute, unless no minute could ever hold the request. */
function minuteRefusal(ask: TokenAsk, room: number | null): TokenRefusal | null {
  const { cfg, c, target, holdTokens, smallest, clamps, now } = ask;
  const perMinute = cfg.tokensPerMinute;
  if (!perMinute || room === null || holdTokens <= room) return null;
  const end = minuteOf(now) + MINUTE_MS;
  const details: LimitDetails = {
    limit: "token_rate",
    count: perMinute,
    current: c.minuteTokens,
    resets_at: iso(end),
  };
  // A request no minute can hold is refused for good: waiting would not help.
  if (smallest > perMinute) {
    const message =
      `This request's worst case (${smallest} tokens${why(target)}) is more than the key's ${perMinute} tokens ` +
      `per minute. ${advice(clamps, target)}`;
    return { ok: false, code: "token_rate_limit_exceeded", message, details, terminal: true };
  }
  const seconds = Math.ceil((end - now) / 1000);
  const message =
    `Token rate limit reached: this request's worst case (${holdTokens} tokens) does not fit the ` +
    `${room} of ${perMinute} tokens left this minute. Retry after ${seconds}s.`;
  return { ok: false, code: "token_rate_limit_exceeded", message, details, retryAfterMs: end - now };
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const why = (target: NonNullable<AdmitInput["target"]>) => (target.holdNote ? `, ${target.holdNote}` : "");

function cycleWord(cycle: Cycle): string {
  return { daily: "day", weekly: "week", monthly: "month", total: "key lifetime" }[cycle];
}
