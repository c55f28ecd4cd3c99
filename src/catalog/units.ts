/**
 * What a price is a price of. Each usage key (what a response reports: `input_tokens`, `cache_write_1h_tokens`,
 * `web_searches`…) has a price key (`input_mtok`, `cache_write_1h_mtok`, `web_searches_kcount`…), the count a price
 * is for (`per`) and its dimensions. These are the units of `@pydantic/genai-prices`, for the price keys the
 * compiled catalog uses (`npm run catalog` refuses a price key not listed here), plus `images`, the one unit the
 * gateway adds for what is priced per picture.
 *
 * Usage keys nest: a unit whose dimensions include another's is part of it (`cache_write_1h_tokens` is part of
 * `cache_write_tokens`, which is part of `input_tokens`). A response reports totals; each priced unit is charged
 * for what its more specific priced units leave (money.ts).
 */
export interface Unit {
  usageKey: string;
  priceKey: string;
  per: number;
  /** input, output, or neither (per-call fees, durations, requests) */
  direction: "input" | "output" | null;
  dims: Readonly<Record<string, string>>;
}

type Row = readonly [usageKey: string, priceKey: string, per: number, dims: Record<string, string>];

const M = 1_000_000;
const K = 1_000;
const tokens = (direction: string, extra: Record<string, string> = {}) => ({ direction, family: "tokens", ...extra });

const ROWS: readonly Row[] = [
  ["input_tokens", "input_mtok", M, tokens("input")],
  ["output_tokens", "output_mtok", M, tokens("output")],
  ["cache_read_tokens", "cache_read_mtok", M, tokens("input", { token_type: "cache_read" })],
  ["cache_write_tokens", "cache_write_mtok", M, tokens("input", { token_type: "cache_write" })],
  ["cache_write_5m_tokens", "cache_write_5m_mtok", M, tokens("input", { token_type: "cache_write", cache_ttl: "5m" })],
  ["cache_write_1h_tokens", "cache_write_1h_mtok", M, tokens("input", { token_type: "cache_write", cache_ttl: "1h" })],
  ["input_text_tokens", "input_text_mtok", M, tokens("input", { modality: "text" })],
  ["input_audio_tokens", "input_audio_mtok", M, tokens("input", { modality: "audio" })],
  ["input_image_tokens", "input_image_mtok", M, tokens("input", { modality: "image" })],
  [
    "cache_audio_read_tokens",
    "cache_audio_read_mtok",
    M,
    tokens("input", { modality: "audio", token_type: "cache_read" }),
  ],
  [
    "cache_image_read_tokens",
    "cache_image_read_mtok",
    M,
    tokens("input", { modality: "image", token_type: "cache_read" }),
  ],
  ["output_text_tokens", "output_text_mtok", M, tokens("output", { modality: "text" })],
  ["output_audio_tokens", "output_audio_mtok", M, tokens("output", { modality: "audio" })],
  ["output_image_tokens", "output_image_mtok", M, tokens("output", { modality: "image" })],
  ["output_reasoning_tokens", "output_reasoning_mtok", M, tokens("output", { token_type: "reasoning" })],
  ["input_characters", "input_mchars", M, { direction: "input", family: "characters" }],
  ["audio_seconds", "audio_hours", 3_600, { family: "durations", modality: "audio" }],
  ["input_audio_seconds", "input_audio_hours", 3_600, { direction: "input", family: "durations", modality: "audio" }],
  ["web_searches", "web_searches_kcount", K, { family: "tool_calls", tool_type: "web_search" }],
  ["storage_searches", "storage_searches_kcount", K, { family: "tool_calls", tool_type: "storage_search" }],
  ["requests", "requests_kcount", K, { family: "requests" }],
  // The gateway's own: DALL·E bills per picture, by size and quality.
  ["images", "images_each", 1, { direction: "output", family: "images" }],
];

export const UNITS: ReadonlyMap<string, Unit> = new Map(
  ROWS.map(([usageKey, priceKey, per, dims]) => {
    const direction = dims.direction === "input" || dims.direction === "output" ? dims.direction : null;
    return [priceKey, { usageKey, priceKey, per, direction, dims }];
  }),
);

/** Whether `part` is `whole` or a part of it: its dimensions include all of `whole`'s. */
export function isPartOf(part: Unit, whole: Unit): boolean {
  return Object.entries(whole.dims).every(([k, v]) => part.dims[k] === v);
}
