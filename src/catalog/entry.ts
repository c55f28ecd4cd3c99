import type { RouteKind } from "../providers/registry.ts";
import type { Rate } from "./pricing.ts";

/** When a price applies: from a date on, or at certain hours (the price database's conditions). */
export type PriceWhen =
  | { type: "start_date"; start_date: string }
  | { type: "time_of_date"; start_time: string; end_time: string };

export interface ModelEntry {
  /** the priced model's id (a request may name it by an alias or a dated snapshot) */
  id: string;
  provider: string;
  /** the model's prices over time: the last entry in force wins; null = not priced */
  schedule: readonly { when?: PriceWhen; rates: Readonly<Record<string, Rate>> }[] | null;
  /** OpenAI service-tier multipliers (decimal strings) */
  serviceTiers?: Readonly<Record<string, string>>;
  /** the most output tokens the model writes unasked; null when not known (then the context window bounds it) */
  maxOutputTokens: number | null;
  /** context window in tokens; null when not known */
  contextWindow: number | null;
  /** the routes beyond chat the model serves */
  serves: readonly RouteKind[];
  /** nano-dollars per picture by `quality|size` (`*|size`: any quality) */
  perImage?: Readonly<Record<string, number>>;
  created: number;
  overridden: boolean;
}
