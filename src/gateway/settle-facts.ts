import { costOf } from "../catalog/pricing.ts";
import { tokensOf } from "../catalog/token-count.ts";
import type { SettleStatus } from "../guard/types.ts";
import type { Admitted } from "./admission.ts";
import type { SettleFacts } from "./settlement.ts";
import type { UsageReader } from "./usage.ts";

/** How an exchange ended, as far as its charge is concerned. */
export type Ending =
  /** the provider failed before an answer (unreachable, timed out, redirected): the hold is released */
  | { kind: "released"; httpStatus: number | null }
  /** a JSON answer cut off while it was read: charged its bound, as nothing of it can be measured */
  | { kind: "cut"; httpStatus: number }
  /** a JSON answer read whole: charged its usage; a success without usage is charged its bound, errors nothing */
  | { kind: "json"; ok: boolean; httpStatus: number; bytes: number }
  /** a stream's end, however it ended: its usage, else what was seen (reported input, delivered text) */
  | { kind: "stream"; status: SettleStatus; httpStatus: number }
  /** speech audio or a plain-text transcription: priced by the request itself, else its bound */
  | { kind: "passthrough"; httpStatus: number };

/**
 * What the KeyGuard is told to settle, for every way an exchange ends: the one place that decides what a request is
 * charged when its usage is missing. Never more than the hold: the guard caps the fallback by it.
 */
export function settleFacts(ending: Ending, a: Admitted, reader: UsageReader): SettleFacts {
  const none = { usage: null, responseId: null, httpStatus: ending.httpStatus };
  switch (ending.kind) {
    case "released":
      return { status: "error", ...none, fallbackNanos: 0, fallbackTokens: 0 };
    case "cut":
      return { status: "error", ...none, fallbackNanos: a.boundCost(0), fallbackTokens: a.boundTokens(0) };
    case "passthrough": {
      const fallback = { fallbackNanos: a.boundCost(0), fallbackTokens: a.boundTokens(0) };
      return { status: "completed", ...none, usage: a.knownUsage, ...fallback };
    }
    case "json": {
      const usage = reader.usage() ?? a.knownUsage;
      return {
        status: ending.ok ? "completed" : "error",
        usage,
        fallbackNanos: ending.ok ? a.boundCost(ending.bytes) : 0,
        fallbackTokens: ending.ok ? a.boundTokens(ending.bytes) : 0,
        responseId: reader.responseId(),
        httpStatus: ending.httpStatus,
        serviceTier: reader.serviceTier() ?? a.serviceTier,
      };
    }
    case "stream": {
      const usage = reader.usage() ?? a.knownUsage;
      const tier = reader.serviceTier() ?? a.serviceTier;
      // Cut before the final usage: the input the provider already reported (else the hold's bound) and the
      // output estimated from the text delivered.
      const estimate = reader.estimate();
      const fallbackNanos =
        estimate.inputKnown && a.prices
          ? costOf(estimate.usage, a.prices, tier).totalNanos
          : a.boundCost(estimate.usage.output_tokens ?? 0);
      // The same estimate in tokens (the guard caps it by the token hold).
      const fallbackTokens = estimate.inputKnown
        ? tokensOf(estimate.usage)
        : a.boundTokens(estimate.usage.output_tokens ?? 0);
      return {
        status: ending.status,
        usage,
        ...(usage ? {} : { estimate: estimate.usage }),
        fallbackNanos,
        fallbackTokens,
        responseId: reader.responseId(),
        httpStatus: ending.httpStatus,
        serviceTier: tier,
      };
    }
  }
}
