import { RUN_ID, RUN_ID_RULE } from "../lib/api-schemas.ts";
import { ApiError } from "../lib/errors.ts";
import { hasDuplicateKeys } from "./duplicate-keys.ts";

/** What the gateway reads from a request body: the model, whether it streams, its max output tokens. */
export interface ParsedBody {
  json: Record<string, unknown>;
  model: string;
  stream: boolean;
  /** the output-limit fields sent (max_tokens, max_completion_tokens, max_output_tokens) and their values */
  outputLimits: Partial<Record<OutputLimitField, number>>;
  /** how many completions the request asks for (OpenAI `n`): each may use the whole max output */
  choices: number;
  /** OpenAI's `stream_options`, when sent (the gateway may add `include_usage` to it) */
  streamOptions: Record<string, unknown> | null;
  /** the uploaded file of a multipart request (audio to transcribe) */
  file?: { size: number; durationSeconds: number | null };
}

export const OUTPUT_LIMIT_FIELDS = ["max_tokens", "max_completion_tokens", "max_output_tokens"] as const;
export type OutputLimitField = (typeof OUTPUT_LIMIT_FIELDS)[number];

/**
 * A multipart body (audio transcriptions): its text fields are read like a JSON body's, its file is measured.
 * The bytes themselves are forwarded unchanged.
 */
export async function parseForm(bytes: ArrayBuffer, contentType: string, defaultModel?: string): Promise<ParsedBody> {
  let form: FormData;
  try {
    form = await new Response(bytes, { headers: { "content-type": contentType } }).formData();
  } catch {
    throw new ApiError("invalid_request", "We could not parse the multipart body of your request.", { param: "body" });
  }
  const fields: Record<string, unknown> = {};
  let file: ParsedBody["file"];
  const seen = new Set<string>();
  for (const [name, value] of form) {
    // A provider may read the first of two parts where the gateway read the last: each is sent once, but for
    // arrays (`timestamp_granularities[]`, as the SDKs send them), which repeat by design and bound nothing.
    if (seen.has(name) && !name.endsWith("[]")) {
      throw new ApiError("invalid_request", `${name}: sent twice in the form; send each field once.`, { param: name });
    }
    seen.add(name);
    if (typeof value === "string") fields[name] = name === "stream" ? value === "true" : value;
    else if (name === "file") {
      const audio = new Uint8Array(await value.arrayBuffer());
      file = { size: audio.byteLength, durationSeconds: wavSeconds(audio) };
    }
  }
  if (!file) throw new ApiError("invalid_request", "file: a file is required.", { param: "file" });
  return { ...readFields(fields, defaultModel), file };
}

/** Formats whose duration follows from their frames: PCM, IEEE float, and the extensible header around them. */
const FRAMED_FORMATS = new Set([1, 3, 0xfffe]);

/**
 * The duration of a PCM WAV file as a decoder plays it, rounded up; null for any other format (bounded by its
 * size instead). A decoder counts frames: the bytes after the data header over sample rate × frame size. The
 * header's byte-rate and data-size fields are not what it plays, and a crafted file can set them to anything,
 * so they are not read; of two frame sizes a header can state, the smaller (the longer duration) is taken.
 */
function wavSeconds(b: Uint8Array): number | null {
  const text = (at: number) => String.fromCharCode(...b.subarray(at, at + 4));
  if (b.byteLength < 44 || text(0) !== "RIFF" || text(8) !== "WAVE") return null;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let bytesPerSecond: number | null = null;
  for (let at = 12; at + 8 <= b.byteLength; ) {
    const size = view.getUint32(at + 4, true);
    if (text(at) === "fmt ") {
      // One format per file: a second one, or one cut short, leaves the duration unknown.
      if (bytesPerSecond !== null || at + 24 > b.byteLength) return null;
      const format = view.getUint16(at + 8, true);
      const channels = view.getUint16(at + 10, true);
      const bytesPerSample = Math.ceil(view.getUint16(at + 22, true) / 8);
      const frame = Math.min(view.getUint16(at + 20, true), channels * bytesPerSample);
      bytesPerSecond = FRAMED_FORMATS.has(format) ? view.getUint32(at + 12, true) * frame : 0;
    }
    if (text(at) === "data") return bytesPerSecond ? Math.ceil((b.byteLength - at - 8) / bytesPerSecond) : null;
    at += 8 + size + (size % 2);
  }
  return null;
}

const isJsonObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** One decoder for the isolate (a whole-buffer decode keeps no state): no new runtime object per request. */
const decoder = new TextDecoder();

export function parseBody(bytes: ArrayBuffer, defaultModel?: string): ParsedBody {
  const text = decoder.decode(bytes);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ApiError("invalid_request", "We could not parse the JSON body of your request.", { param: "body" });
  }
  if (!isJsonObject(json)) {
    throw new ApiError("invalid_request", "The request body must be a JSON object.", { param: "body" });
  }
  if (hasDuplicateKeys(text, json)) {
    throw new ApiError("invalid_request", "The JSON body names a key twice in one object; send each key once.", {
      param: "body",
    });
  }
  return readFields(json, defaultModel);
}

/** The fields the gateway reads, validated: model, stream, the output limits and how many answers. */
function readFields(body: Record<string, unknown>, defaultModel?: string): ParsedBody {
  if (body.model === undefined && defaultModel) body.model = defaultModel;
  if (typeof body.model !== "string" || body.model === "") {
    throw new ApiError("invalid_request", "model: you must provide a model parameter.", { param: "model" });
  }
  if (body.stream !== undefined && typeof body.stream !== "boolean") {
    throw new ApiError("invalid_request", "stream: must be a boolean.", { param: "stream" });
  }
  // The gateway may add `include_usage` to it: anything but an object is refused, not reshaped.
  const streamOptions = body.stream_options ?? null;
  if (streamOptions !== null && !isJsonObject(streamOptions)) {
    throw new ApiError("invalid_request", "stream_options: must be an object.", { param: "stream_options" });
  }
  const outputLimits: ParsedBody["outputLimits"] = {};
  for (const field of OUTPUT_LIMIT_FIELDS) {
    const v = body[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
      throw new ApiError("invalid_request", `${field}: must be a non-negative integer.`, { param: field });
    }
    outputLimits[field] = v;
  }
  // Every answer the provider generates is billed: `n` choices, or `best_of` (legacy completions), for each
  // prompt of a legacy completions batch.
  let choices = 1;
  for (const field of ["n", "best_of"]) {
    const v = body[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 128) {
      throw new ApiError("invalid_request", `${field}: must be an integer from 1 to 128.`, { param: field });
    }
    choices = Math.max(choices, v);
  }
  const prompt = body.prompt;
  if (Array.isArray(prompt) && prompt.length > 0 && typeof prompt[0] !== "number") choices *= prompt.length;
  return { json: body, model: body.model, stream: body.stream === true, outputLimits, choices, streamOptions };
}

/**
 * `x-spendgate-metadata: {"run":"42"}` tags the ledger row: at most 16 keys of ≤ 64 characters, each value a
 * string of ≤ 512. Anything else is refused whole (never silently dropped).
 */
export function metadataFrom(headers: Headers): Record<string, string> {
  const raw = headers.get("x-spendgate-metadata");
  if (!raw) return {};
  try {
    const parsed: unknown = JSON.parse(raw);
    if (isJsonObject(parsed)) {
      const entries = Object.entries(parsed);
      const valid = entries.every(([k, v]) => k.length <= 64 && typeof v === "string" && v.length <= 512);
      if (valid && entries.length <= 16) return Object.fromEntries(entries) as Record<string, string>;
    }
  } catch {
    // fall through to the 400
  }
  throw new ApiError(
    "invalid_request",
    "x-spendgate-metadata: must be a JSON object of at most 16 string values (keys ≤ 64, values ≤ 512 characters).",
    {
      param: "x-spendgate-metadata",
    },
  );
}

/**
 * The run a request names: the `x-spendgate-run` header, or the metadata key `run` (the header wins only when
 * both name the same run; two different runs are refused). A malformed id is refused whole, before the KeyGuard
 * is asked anything, so nothing is counted or held; undefined when the request names no run.
 */
export function runFrom(headers: Headers, metadata: Record<string, string>): string | undefined {
  const header = headers.get("x-spendgate-run") ?? undefined;
  const tagged = metadata.run;
  const bad = (param: string, where: string) => new ApiError("invalid_request", `${where}: ${RUN_ID_RULE}`, { param });
  if (header !== undefined && !RUN_ID.test(header)) throw bad("x-spendgate-run", "x-spendgate-run");
  if (tagged !== undefined && !RUN_ID.test(tagged)) throw bad("x-spendgate-metadata", "x-spendgate-metadata.run");
  if (header !== undefined && tagged !== undefined && header !== tagged) {
    throw new ApiError(
      "invalid_request",
      "x-spendgate-run and x-spendgate-metadata.run name different runs; send one run id.",
      { param: "x-spendgate-run" },
    );
  }
  return header ?? tagged;
}
