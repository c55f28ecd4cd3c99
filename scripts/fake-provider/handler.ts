/**
 * The project's fake LLM provider: OpenAI-shaped (chat completions, responses, embeddings, legacy completions,
 * moderations), Mistral's fill-in-the-middle, and
 * Anthropic-shaped (messages, count_tokens), JSON and SSE, with deterministic usage. Web APIs only, so the
 * same handler runs behind Miniflare's outbound service in tests and behind a Node HTTP server for
 * `npm run dev`, the demo and the benchmark.
 *
 * Usage is deterministic: input tokens = words in the request's text + 3 per message; the reply is
 * REPLY_WORDS words (fewer when max tokens is smaller), one token per word. A `[cached:N]` marker in the
 * text reports N cached input tokens (Anthropic: cache reads; `[cache_write:N]` cache writes).
 *
 * Faults, switched by a marker in the request text (the gateway forwards bodies unchanged):
 *   [[fault:500]] [[fault:429]]  upstream error status in the provider's shape
 *   [[fault:slow:MS]]            first byte after MS milliseconds
 *   [[fault:gap:MS]]             MS between stream chunks
 *   [[fault:truncate]]           the stream stops midway (no usage, no terminator)
 *   [[fault:reset]]              the stream errors midway (connection reset)
 *   [[fault:hang]]               never answers
 *   [[fault:nousage]]            a JSON success without usage
 *   [[fault:words:N]]            reply with N words
 *   [[fault:redirect]]           a 307 to another host (a gateway must not follow it)
 *
 * Reported usage, for the pricing tests (chat, responses and messages; JSON and streams):
 *   [[usage:{...}]]              the response's `usage` object exactly as given (the provider's own shape)
 *   [[tier:NAME]]                the response says it ran on service tier NAME
 *   [web_search_calls:N]         a Responses answer carries N web_search_call output items
 *
 * Billing at the worst case a request allows (for the hard-cap tests), with [[fault:worst]] in the text:
 *   output = the largest output-limit field this route reads (chat: max_tokens / max_completion_tokens,
 *            responses: max_output_tokens, messages: max_tokens) × n, or [maxout:N] when none is sent;
 *   input  = the bytes of the body received (less inline image data), plus a tool-use prompt (500, and 900 per
 *            schema-less tool), each image at its family's documented worst case and each bounded web fetch at
 *            its limit — or [pulled:N] when the request makes the provider fill in input no documented rule
 *            bounds (PDFs, files, state, other server tools, pulling betas): worst-input.ts.
 *   [overbill:N] adds N output tokens beyond that: a provider billing more than any bound (overage).
 *   Web searches: every call a web search tool allows (Anthropic `max_uses`, Responses `max_tool_calls`).
 */

import { worstInput } from "./worst-input.ts";

export interface RecordedRequest {
  method: string;
  url: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
  usage: { input: number; output: number; cacheRead: number; cacheWrite: number; reasoning: number } | null;
  /** multipart requests: the SHA-256 of the whole body as received */
  bodySha256?: string | undefined;
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Seconds of a PCM WAV file (rounded up), or of anything else at 16 kB/s. */
function audioSeconds(b: Uint8Array): number {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const tag = (at: number) => String.fromCharCode(...b.subarray(at, at + 4));
  if (b.byteLength >= 44 && tag(0) === "RIFF" && tag(8) === "WAVE") {
    // As a lenient decoder plays PCM: every byte after the data header, in frames of channels × sample size at
    // the sample rate — whatever the header's byte-rate and data-size fields say.
    let perSecond = 0;
    for (let at = 12; at + 8 <= b.byteLength; ) {
      const size = view.getUint32(at + 4, true);
      if (tag(at) === "fmt ") {
        const frame = view.getUint16(at + 10, true) * Math.ceil(view.getUint16(at + 22, true) / 8);
        perSecond = view.getUint32(at + 12, true) * frame;
      }
      if (tag(at) === "data" && perSecond) return Math.ceil((b.byteLength - at - 8) / perSecond);
      at += 8 + size + (size % 2);
    }
  }
  return Math.ceil(b.byteLength / 16_000);
}

/** Deterministic "audio" for a text: an MP3-looking header and bytes derived from the text. */
function speechBytes(text: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(128 + text.length * 16);
  out.set([0x49, 0x44, 0x33, 0x04]);
  for (let i = 4; i < out.length; i++) out[i] = (text.charCodeAt(i % Math.max(1, text.length)) * 31 + i) & 0xff;
  return out;
}

export interface FakeProviderOptions {
  /** fixed latency before the first byte, ms */
  latencyMs?: number;
  /** keep the last N requests for inspection at GET /__fake/requests */
  record?: number;
}

const REPLY_WORDS = 12;
const WORDS = "Spendgate fake provider says hello and meters every token it streams back to you today".split(" ");

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    });
  });

function textOf(v: unknown): string {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) return v.map(textOf).join(" ");
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (typeof o.text === "string") return o.text;
    if ("content" in o) return textOf(o.content);
    if (typeof o.input === "string" || Array.isArray(o.input)) return textOf(o.input);
  }
  return "";
}

interface Plan {
  text: string;
  messages: number;
  fault: Map<string, string>;
  /** [[usage:{...}]]: the usage object to report as given */
  usage: Record<string, unknown> | null;
  /** [[tier:NAME]] */
  tier: string | null;
}

function plan(body: Record<string, unknown>): Plan {
  const parts: string[] = [];
  let messages = 0;
  for (const field of ["messages", "input", "system", "instructions", "prompt", "suffix"]) {
    const v = body[field];
    if (v === undefined) continue;
    if (Array.isArray(v) && field !== "input") messages += v.length;
    else messages += Array.isArray(v) ? v.length : 1;
    parts.push(textOf(v));
  }
  const text = parts.join(" ");
  const fault = new Map<string, string>();
  for (const m of text.matchAll(/\[\[fault:([a-z0-9]+)(?::(\d+))?\]\]/g)) fault.set(m[1]!, m[2] ?? "");
  const usage = /\[\[usage:(\{.*?\})\]\]/.exec(text)?.[1];
  const tier = /\[\[tier:([a-z_]+)\]\]/.exec(text)?.[1] ?? null;
  return { text, messages, fault, usage: usage ? (JSON.parse(usage) as Record<string, unknown>) : null, tier };
}

function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(36);
}

const countWords = (text: string) => text.split(/\s+/).filter(Boolean).length;
const marker = (text: string, name: string) => Number(new RegExp(`\\[${name}:(\\d+)\\]`).exec(text)?.[1] ?? 0);

function replyWords(body: Record<string, unknown>, p: Plan): string[] {
  const wanted = p.fault.has("words") ? Number(p.fault.get("words")) : REPLY_WORDS;
  const max = [body.max_tokens, body.max_completion_tokens, body.max_output_tokens].find(
    (v) => typeof v === "number",
  ) as number | undefined;
  const n = Math.max(0, Math.min(wanted, max ?? wanted));
  return Array.from({ length: n }, (_, i) => WORDS[i % WORDS.length]!);
}

const json = (status: number, body: unknown, extra: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...extra } });

function sse(
  chunks: string[],
  opts: { gapMs: number; truncate: boolean; reset: boolean; signal?: AbortSignal },
): Response {
  const enc = new TextEncoder();
  let i = 0;
  const cut = Math.max(1, Math.floor(chunks.length / 2));
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if ((opts.truncate || opts.reset) && i >= cut) {
        if (opts.reset) controller.error(new Error("connection reset by fake provider"));
        else controller.close();
        return;
      }
      if (i >= chunks.length) return controller.close();
      if (i > 0) await sleep(opts.gapMs, opts.signal);
      controller.enqueue(enc.encode(chunks[i++]!));
    },
  });
  return new Response(stream, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-request-id": "fake-upstream-id",
    },
  });
}

/** The most a provider could bill for this request (see [[fault:worst]] above). */
function worstCase(
  path: string,
  body: Record<string, unknown>,
  raw: string,
  text: string,
  beta: string,
): { input: number; output: number; searches: number } {
  const fields = path.endsWith("/responses")
    ? ["max_output_tokens"]
    : path.endsWith("/messages")
      ? ["max_tokens"]
      : ["max_tokens", "max_completion_tokens"];
  const sent = fields.map((f) => body[f]).filter((v): v is number => typeof v === "number");
  const choices = typeof body.n === "number" ? body.n : 1;
  const output = (sent.length ? Math.max(...sent) : marker(text, "maxout")) * choices + marker(text, "overbill");
  const tools = Array.isArray(body.tools) ? (body.tools as { type?: string }[]) : [];
  const input = worstInput(path, body, raw, beta, marker(text, "pulled"));
  const limit = (v: unknown) => (typeof v === "number" ? v : 0);
  const searches = path.endsWith("/messages")
    ? tools.filter((t) => t?.type?.startsWith("web_search_")).reduce((n, t) => n + limit((t as any).max_uses), 0)
    : tools.some((t) => t?.type?.startsWith("web_search"))
      ? limit(body.max_tool_calls)
      : 0;
  return { input, output, searches };
}

export function createFakeProvider(options: FakeProviderOptions = {}) {
  const recorded: RecordedRequest[] = [];
  const hooks: { url: string; headers: Record<string, string>; body: string; status: number }[] = [];
  const failures = new Map<string, number>();
  const keep = options.record ?? 200;

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname;
    if (path === "/__fake/requests") {
      if (req.method === "DELETE") recorded.length = 0;
      return json(200, { data: recorded });
    }
    if (path === "/__fake/hooks") return json(200, { data: hooks });
    // A webhook receiver (any host starting with `hooks.`): records each delivery as received;
    // `?fail=N` answers 500 to the first N deliveries of each webhook-id.
    if (url.hostname.startsWith("hooks.")) {
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => {
        headers[k] = v;
      });
      const id = headers["webhook-id"] ?? "";
      const seen = (failures.get(id) ?? 0) + 1;
      failures.set(id, seen);
      const failing = seen <= Number(url.searchParams.get("fail") ?? 0);
      hooks.push({ url: req.url, headers, body: await req.text(), status: failing ? 500 : 200 });
      return json(failing ? 500 : 200, { ok: !failing });
    }
    if (req.method === "GET" && path.endsWith("/models")) return json(200, { object: "list", data: [] });
    if (req.method !== "POST")
      return json(404, { error: { message: "fake provider: unknown route", type: "invalid_request_error" } });

    let raw: string;
    let body: Record<string, unknown>;
    let upload: Uint8Array<ArrayBuffer> | null = null;
    let bodySha256: string | undefined;
    const contentType = req.headers.get("content-type") ?? "";
    if (contentType.startsWith("multipart/form-data")) {
      // Audio uploads: the text fields as the body, the file measured (and the whole body's digest recorded,
      // so tests can see it arrived byte for byte).
      const bytes = new Uint8Array(await req.arrayBuffer());
      bodySha256 = await sha256(bytes);
      const form = await new Response(bytes, { headers: { "content-type": contentType } }).formData();
      body = {};
      for (const [name, value] of form) {
        if (typeof value === "string") body[name] = value;
        else {
          upload = new Uint8Array(await value.arrayBuffer());
          body[name] = { name: value.name, size: upload.byteLength };
        }
      }
      raw = JSON.stringify(body);
    } else {
      raw = await req.text();
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        return json(400, { error: { message: "fake provider: bad JSON", type: "invalid_request_error" } });
      }
    }
    let p: Plan;
    try {
      p = plan(body);
    } catch {
      // Nesting deep enough to exhaust the stack (as real providers do, a 400, not a crash).
      return json(400, { error: { message: "fake provider: input nested too deeply", type: "invalid_request_error" } });
    }
    const anthropic = path.endsWith("/v1/messages") || path.endsWith("/v1/messages/count_tokens");
    const headers: Record<string, string> = {};
    req.headers.forEach((v, k) => {
      headers[k] = v;
    });
    const entry: RecordedRequest = { method: req.method, url: req.url, path, headers, body, usage: null, bodySha256 };
    recorded.push(entry);
    if (recorded.length > keep) recorded.shift();

    await sleep((options.latencyMs ?? 0) + Number(p.fault.get("slow") ?? 0), req.signal);
    if (p.fault.has("hang")) {
      await new Promise<void>((resolve) => req.signal.addEventListener("abort", () => resolve()));
      return json(499, {});
    }
    if (p.fault.has("redirect")) {
      return new Response(null, { status: 307, headers: { location: "http://169.254.169.254/latest/meta-data/" } });
    }
    const status = p.fault.has("500") ? 500 : p.fault.has("429") ? 429 : 0;
    if (status) {
      return anthropic
        ? json(status, {
            type: "error",
            error: { type: status === 429 ? "rate_limit_error" : "api_error", message: `fake ${status}` },
          })
        : json(status, {
            error: {
              message: `fake ${status}`,
              type: status === 429 ? "requests" : "server_error",
              param: null,
              code: null,
            },
          });
    }

    // Ids are a hash of model + text, so the same prompt gives the same bytes (streams can be compared).
    const id = `fake_${fnv1a(`${String(body.model)}|${p.text}`)}`;
    let input = countWords(p.text) + 3 * Math.max(1, p.messages);
    const cacheRead = Math.min(input, marker(p.text, "cached"));
    const cacheWrite = Math.min(input - cacheRead, marker(p.text, "cache_write"));
    const words = replyWords(body, p);
    const model = String(body.model);
    const reasoning = /^o\d|^gpt-5/.test(model) ? Math.min(words.length, 2) : 0;
    let output = words.length;
    let searches = marker(p.text, "web_search_calls");
    if (p.fault.has("worst")) {
      const worst = worstCase(path, body, raw, p.text, req.headers.get("anthropic-beta") ?? "");
      input = worst.input;
      output = worst.output;
      searches = worst.searches;
    }
    const tier = p.tier ? { service_tier: p.tier } : {};
    entry.usage = { input, output, cacheRead, cacheWrite, reasoning };
    const noUsage = p.fault.has("nousage");
    const streamOpts = {
      gapMs: Number(p.fault.get("gap") ?? 0),
      truncate: p.fault.has("truncate"),
      reset: p.fault.has("reset"),
      signal: req.signal,
    };
    const created = 1_793_491_200;

    if (path.endsWith("/messages/count_tokens")) return json(200, { input_tokens: input });

    if (path.endsWith("/v1/messages")) {
      // Anthropic: input_tokens counts only uncached input.
      const usage = p.usage ?? {
        input_tokens: input - cacheRead - cacheWrite,
        cache_creation_input_tokens: cacheWrite,
        cache_read_input_tokens: cacheRead,
        output_tokens: output,
        ...(searches ? { server_tool_use: { web_search_requests: searches } } : {}),
      };
      const message = {
        id,
        type: "message",
        role: "assistant",
        model,
        content: [{ type: "text", text: words.join(" ") }],
        stop_reason: "end_turn",
        stop_sequence: null,
      };
      if (!body.stream) return json(200, noUsage ? message : { ...message, usage });
      const ev = (type: string, data: unknown) => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
      const chunks = [
        ev("message_start", {
          type: "message_start",
          message: { ...message, content: [], stop_reason: null, usage: { ...usage, output_tokens: 1 } },
        }),
        ev("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }),
        ev("ping", { type: "ping" }),
        ...words.map((w, i) =>
          ev("content_block_delta", {
            type: "content_block_delta",
            index: 0,
            delta: { type: "text_delta", text: (i ? " " : "") + w },
          }),
        ),
        ev("content_block_stop", { type: "content_block_stop", index: 0 }),
        ev("message_delta", {
          type: "message_delta",
          delta: { stop_reason: "end_turn", stop_sequence: null },
          usage: p.usage ?? { output_tokens: output },
        }),
        ev("message_stop", { type: "message_stop" }),
      ];
      return sse(chunks, streamOpts);
    }

    const openaiUsage = p.usage ?? {
      prompt_tokens: input,
      completion_tokens: output,
      total_tokens: input + output,
      prompt_tokens_details: { cached_tokens: cacheRead, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: reasoning,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    };

    if (path.endsWith("/embeddings")) {
      entry.usage = { input, output: 0, cacheRead: 0, cacheWrite: 0, reasoning: 0 };
      const inputs = Array.isArray(body.input) ? body.input : [body.input];
      return json(200, {
        object: "list",
        data: inputs.map((_, index) => ({ object: "embedding", index, embedding: [0.1, 0.2, 0.3, 0.4] })),
        model,
        usage: { prompt_tokens: input, total_tokens: input },
      });
    }

    if (path.endsWith("/responses")) {
      const usage = p.usage ?? {
        input_tokens: input,
        input_tokens_details: { cached_tokens: cacheRead },
        output_tokens: output,
        output_tokens_details: { reasoning_tokens: reasoning },
        total_tokens: input + output,
      };
      const text = words.join(" ");
      const item = {
        id: `msg_${id}`,
        type: "message",
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text, annotations: [] }],
      };
      const calls = Array.from({ length: searches }, (_, i) => ({
        id: `ws_${id}_${i}`,
        type: "web_search_call",
        status: "completed",
        action: { type: "search", query: "fake" },
      }));
      const response = {
        id: `resp_${id}`,
        object: "response",
        created_at: created,
        status: "completed",
        model,
        output: [...calls, item],
        usage: noUsage ? null : usage,
        ...tier,
      };
      if (!body.stream) return json(200, response);
      let n = 0;
      const ev = (type: string, data: Record<string, unknown>) =>
        `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: n++, ...data })}\n\n`;
      const chunks = [
        ev("response.created", { response: { ...response, status: "in_progress", output: [], usage: null } }),
        ev("response.output_item.added", { output_index: 0, item: { ...item, status: "in_progress", content: [] } }),
        ev("response.content_part.added", {
          item_id: item.id,
          output_index: 0,
          content_index: 0,
          part: { type: "output_text", text: "", annotations: [] },
        }),
        ...words.map((w, i) =>
          ev("response.output_text.delta", {
            item_id: item.id,
            output_index: 0,
            content_index: 0,
            delta: (i ? " " : "") + w,
          }),
        ),
        ev("response.output_text.done", { item_id: item.id, output_index: 0, content_index: 0, text }),
        ev("response.content_part.done", {
          item_id: item.id,
          output_index: 0,
          content_index: 0,
          part: item.content[0],
        }),
        ev("response.output_item.done", { output_index: 0, item }),
        ev("response.completed", { response }),
      ];
      return sse(chunks, streamOpts);
    }

    if (path.endsWith("/images/generations")) {
      const n = typeof body.n === "number" ? body.n : 1;
      const data = Array.from({ length: n }, () => ({
        b64_json: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk",
      }));
      if (!model.startsWith("gpt-image")) {
        entry.usage = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, reasoning: 0 };
        return json(200, { created, data });
      }
      const out = 1_056 * n;
      entry.usage = { input, output: out, cacheRead: 0, cacheWrite: 0, reasoning: 0 };
      const usage = {
        input_tokens: input,
        input_tokens_details: { text_tokens: input, image_tokens: 0 },
        output_tokens: out,
        total_tokens: input + out,
      };
      return json(200, { created, data, usage });
    }

    if (path.endsWith("/audio/transcriptions")) {
      const seconds = upload ? audioSeconds(upload) : 0;
      const text = words.join(" ");
      const format = typeof body.response_format === "string" ? body.response_format : "json";
      const tokens = model !== "whisper-1";
      const audio = seconds * 10;
      entry.usage = {
        input: tokens ? audio : seconds,
        output: tokens ? output : 0,
        cacheRead: 0,
        cacheWrite: 0,
        reasoning: 0,
      };
      const usage = tokens
        ? {
            type: "tokens",
            input_tokens: audio,
            input_token_details: { text_tokens: 0, audio_tokens: audio },
            output_tokens: output,
            total_tokens: audio + output,
          }
        : { type: "duration", seconds };
      if (body.stream === "true") {
        const ev = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;
        const chunks = [
          ...words.map((w, i) => ev({ type: "transcript.text.delta", delta: (i ? " " : "") + w })),
          ev({ type: "transcript.text.done", text, usage }),
        ];
        return sse(chunks, streamOpts);
      }
      if (format === "text") return new Response(text, { headers: { "content-type": "text/plain" } });
      if (format === "verbose_json")
        return json(200, { task: "transcribe", language: "english", duration: seconds, text, segments: [], usage });
      return json(200, { text, usage });
    }

    if (path.endsWith("/audio/speech")) {
      entry.usage = { input: String(body.input ?? "").length, output: 0, cacheRead: 0, cacheWrite: 0, reasoning: 0 };
      return new Response(speechBytes(String(body.input ?? "")), { headers: { "content-type": "audio/mpeg" } });
    }

    if (path.endsWith("/moderations")) {
      const inputs = Array.isArray(body.input) ? body.input : [body.input];
      const flagged = /\bviolent\b/i.test(p.text);
      const result = {
        flagged,
        categories: { violence: flagged },
        category_scores: { violence: flagged ? 0.9 : 0.01 },
      };
      entry.usage = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, reasoning: 0 };
      return json(200, { id: `modr-${id}`, model, results: inputs.map(() => result) });
    }

    if (path.endsWith("/completions") && !path.endsWith("/chat/completions")) {
      // Legacy completions (OpenAI, Together, Fireworks) and Mistral's FIM (which answers in the chat shape).
      const fim = path.endsWith("/fim/completions");
      const text = words.join(" ");
      if (!body.stream) {
        const choice = fim
          ? { index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }
          : { text, index: 0, logprobs: null, finish_reason: "stop" };
        const object = fim ? "chat.completion" : "text_completion";
        const usage = noUsage
          ? {}
          : { usage: { prompt_tokens: input, completion_tokens: output, total_tokens: input + output } };
        return json(200, { id: `cmpl-${id}`, object, created, model, choices: [choice], ...usage });
      }
      const includeUsage = fim || (body.stream_options as Record<string, unknown> | undefined)?.include_usage === true;
      const object = fim ? "chat.completion.chunk" : "text_completion";
      const piece = (w: string, i: number, finish: string | null) =>
        fim
          ? { index: 0, delta: { content: (i ? " " : "") + w }, finish_reason: finish }
          : { text: (i ? " " : "") + w, index: 0, logprobs: null, finish_reason: finish };
      const chunk = (choices: unknown[], usage?: unknown) => {
        const data = { id: `cmpl-${id}`, object, created, model, choices, ...(usage ? { usage } : {}) };
        return `data: ${JSON.stringify(data)}\n\n`;
      };
      const chunks = [
        ...words.map((w, i) => chunk([piece(w, i, null)])),
        chunk([
          fim
            ? { index: 0, delta: {}, finish_reason: "stop" }
            : { text: "", index: 0, logprobs: null, finish_reason: "stop" },
        ]),
        ...(includeUsage
          ? [chunk([], { prompt_tokens: input, completion_tokens: output, total_tokens: input + output })]
          : []),
        "data: [DONE]\n\n",
      ];
      return sse(chunks, streamOpts);
    }

    if (path.endsWith("/chat/completions")) {
      const base = { id: `chatcmpl-${id}`, created, model, system_fingerprint: "fp_fake", ...tier };
      if (!body.stream) {
        return json(200, {
          ...base,
          object: "chat.completion",
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: words.join(" "), refusal: null },
              logprobs: null,
              finish_reason: "stop",
            },
          ],
          ...(noUsage ? {} : { usage: openaiUsage }),
        });
      }
      // Like Mistral's API, the `mistral` fake always ends its stream with usage (and has no stream_options).
      const mistral = url.hostname.includes("mistral") || path.startsWith("/mistral/");
      const includeUsage =
        mistral || (body.stream_options as Record<string, unknown> | undefined)?.include_usage === true;
      const chunk = (choices: unknown[], usage?: unknown) =>
        `data: ${JSON.stringify({
          ...base,
          object: "chat.completion.chunk",
          choices,
          ...(includeUsage ? { usage: usage ?? null } : {}),
        })}\n\n`;
      const chunks = [
        chunk([{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]),
        ...words.map((w, i) =>
          chunk([{ index: 0, delta: { content: (i ? " " : "") + w }, logprobs: null, finish_reason: null }]),
        ),
        chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }]),
        ...(includeUsage ? [chunk([], openaiUsage)] : []),
        "data: [DONE]\n\n",
      ];
      return sse(chunks, streamOpts);
    }
    return json(404, { error: { message: `fake provider: unknown route ${path}`, type: "invalid_request_error" } });
  }

  return { handle, recorded, hooks };
}
