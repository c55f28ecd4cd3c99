/**
 * The input the fake provider bills a request at its worst case ([[fault:worst]]), as a provider following its
 * documented rules could bill it — written apart from the gateway's hold code, so the hold tests compare the two:
 *
 * - text: the body's bytes (a token is never shorter than a byte), less the inline data of each image in a
 *   message's content, plus a tool-use prompt (500, and 900 per schema-less tool);
 * - images: by the documented sizing rule of the model's family, from the size a lenient decoder would see (the
 *   largest size the file states anywhere); a file it cannot read, an animation, or one carrying more pixel data
 *   than its size holds is billed at the family's ceiling (a decoder may read what is there);
 * - a web fetch with `max_uses` and `max_content_tokens`: that many fetches of that much content;
 * - anything else the provider fills in itself (PDFs — their text has no documented bound a page —, audio, file
 *   ids, stored state, MCP servers, other server tools, pulling betas, images of a family with no rule here): the
 *   `[pulled:N]` marker of the request's text, the context window the test says the model has;
 * - never more than that window: a provider refuses a prompt longer than its context window (context length
 *   exceeded) rather than bill it, so images that add up past it are billed the window at most.
 */

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const each = (v: unknown): Json[] => (Array.isArray(v) ? v.filter(isObject) : []);

type Family =
  | { kind: "claude"; ceiling: number }
  | { kind: "tiles"; base: number; tile: number }
  | { kind: "patches"; cap: number; multiplier: number };

/** The families the fake knows, by the model id as sent (documented figures; see docs/holds.md). */
function familyOf(model: string): Family | null {
  if (/^claude-(opus|sonnet|haiku)-(4-[7-9]|[5-9])|^claude-fable/.test(model))
    return { kind: "claude", ceiling: 5_000 };
  if (/^claude-/.test(model)) return { kind: "claude", ceiling: 1_600 };
  if (/^gpt-4o-mini/.test(model)) return { kind: "tiles", base: 2_833, tile: 5_667 };
  if (/^gpt-4o/.test(model)) return { kind: "tiles", base: 85, tile: 170 };
  if (/^gpt-4\.1-mini/.test(model)) return { kind: "patches", cap: 1_536, multiplier: 1.62 };
  if (/^gpt-5\.4$/.test(model)) return { kind: "patches", cap: 2_500, multiplier: 1.2 };
  if (/^gpt-5\.5$/.test(model)) return { kind: "patches", cap: 10_000, multiplier: 1.2 };
  return null;
}

function tokensOf(f: Family, size: { w: number; h: number } | null, detail: unknown): number {
  if (f.kind === "claude") return size ? Math.min(f.ceiling, Math.ceil((size.w * size.h) / 750)) : f.ceiling;
  if (f.kind === "patches") {
    const n = size ? Math.ceil(size.w / 32) * Math.ceil(size.h / 32) : f.cap;
    return Math.round(Math.min(n, f.cap) * f.multiplier);
  }
  if (detail === "low") return f.base;
  if (!size) return f.base + 8 * f.tile;
  const fit = Math.min(1, 2048 / Math.max(size.w, size.h));
  const short = Math.min(1, 768 / (Math.min(size.w, size.h) * fit));
  const scale = fit * short;
  return f.base + f.tile * Math.ceil(Math.round(size.w * scale) / 512) * Math.ceil(Math.round(size.h * scale) / 512);
}

function decode(b64: string): Uint8Array | null {
  try {
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

/**
 * The size a lenient decoder may see: the largest a file states in any of its headers; null (the ceiling) for a
 * file it cannot read, an animation, or pixel data far beyond what the stated size holds.
 */
export function lenientSize(b: Uint8Array): { w: number; h: number } | null {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const tag = (at: number) => String.fromCharCode(...b.subarray(at, at + 4));
  const most = { w: 0, h: 0 };
  const see = (w: number, h: number) => ((most.w = Math.max(most.w, w)), (most.h = Math.max(most.h, h)));
  const result = (dataBytes: number, bytesPerPixel: number) =>
    most.w && most.h && dataBytes <= most.w * most.h * bytesPerPixel + 4_096 ? most : null;
  try {
    if (b[0] === 0x89 && tag(1) === "PNG\r") {
      let idat = 0;
      for (let at = 8; at + 8 <= b.length && tag(at + 4) !== "IEND"; at += 12 + v.getUint32(at)) {
        if (tag(at + 4) === "IHDR") see(v.getUint32(at + 8), v.getUint32(at + 12));
        if (tag(at + 4) === "acTL") return null;
        if (tag(at + 4) === "IDAT") idat += v.getUint32(at);
      }
      return result(idat, 10);
    }
    if (b[0] === 0xff && b[1] === 0xd8) {
      for (let at = 2; at + 4 <= b.length; at += 2 + v.getUint16(at + 2)) {
        const marker = b[at + 1]!;
        if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
          see(v.getUint16(at + 7), v.getUint16(at + 5));
        }
        if (marker === 0xda) return result(b.length - at, 128);
      }
      return null;
    }
    if (tag(0) === "GIF8") {
      see(v.getUint16(6, true), v.getUint16(8, true));
      let frames = 0;
      let data = 0;
      let at = 13 + (b[10]! & 0x80 ? 3 * 2 ** ((b[10]! & 7) + 1) : 0);
      const skip = () => {
        for (let n = b[at]!; n; n = b[at]!) (at += 1 + n), (data += n);
        at++;
      };
      while (at < b.length && b[at] !== 0x3b) {
        if (b[at] === 0x21) (at += 2), skip();
        else if (b[at] === 0x2c) {
          frames++;
          see(
            v.getUint16(at + 1, true) + v.getUint16(at + 5, true),
            v.getUint16(at + 3, true) + v.getUint16(at + 7, true),
          );
          const flags = b[at + 9]!;
          at += 11 + (flags & 0x80 ? 3 * 2 ** ((flags & 7) + 1) : 0);
          skip();
        } else return null;
      }
      return frames > 1 ? null : result(data, 4);
    }
    if (tag(0) === "RIFF" && tag(8) === "WEBP") {
      let bitstream = 0;
      const end = Math.min(b.length, 8 + v.getUint32(4, true));
      for (let at = 12; at + 8 <= end; at += 8 + v.getUint32(at + 4, true) + (v.getUint32(at + 4, true) % 2)) {
        const type = tag(at);
        if (type === "ANIM" || type === "ANMF" || (type === "VP8X" && b[at + 8]! & 2)) return null;
        if (type === "VP8X")
          see(1 + (v.getUint32(at + 12, true) & 0xffffff), 1 + (v.getUint32(at + 15, true) & 0xffffff));
        if (type === "VP8 ") see(v.getUint16(at + 14, true) & 0x3fff, v.getUint16(at + 16, true) & 0x3fff);
        if (type === "VP8L") {
          const bits = v.getUint32(at + 9, true);
          see(1 + (bits & 0x3fff), 1 + ((bits >>> 14) & 0x3fff));
        }
        if (type === "VP8 " || type === "VP8L") bitstream += v.getUint32(at + 4, true);
      }
      return result(bitstream, 128);
    }
  } catch {
    // a read past the end: a file no decoder shows
  }
  return null;
}

interface Billed {
  tokens: number;
  inlineChars: number;
  /** something in the request only the provider can size: billed at [pulled:N] */
  unbounded: boolean;
}

/** The images (and plain-text documents) of the request's messages, billed as above. */
function contentInput(path: string, body: Json): Billed {
  const billed: Billed = { tokens: 0, inlineChars: 0, unbounded: false };
  const family = familyOf(String(body.model));
  const image = (inline: string | null, b64: string | null, detail: unknown) => {
    if (!family) return void (billed.unbounded = true);
    const bytes = b64 === null ? null : decode(b64);
    billed.tokens += tokensOf(family, bytes ? lenientSize(bytes) : null, detail);
    billed.inlineChars += inline?.length ?? 0;
  };
  const dataUrl = (url: string) => (url.startsWith("data:") ? url.slice(url.indexOf(",") + 1) : null);
  const seen = new Set<object>();
  if (path.endsWith("/messages")) {
    const block = (b: Json, depth: number): void => {
      seen.add(b);
      const s = isObject(b.source) ? b.source : {};
      if (b.type === "image") {
        if (s.type === "base64" && typeof s.data === "string") image(s.data, s.data, null);
        else image(null, null, null);
      } else if (b.type === "document" && s.type === "content" && depth < 2) {
        for (const inner of each(s.content)) block(inner, depth + 1);
      } else if (b.type === "document" && s.type !== "text") {
        billed.unbounded = true;
      } else if (b.type === "tool_result" && depth === 0) {
        for (const inner of each(b.content)) block(inner, depth + 1);
      }
    };
    for (const m of each(body.messages)) for (const b of each(m.content)) block(b, 0);
  } else if (path.endsWith("/chat/completions")) {
    for (const m of each(body.messages)) {
      for (const p of each(m.content)) {
        if (p.type !== "image_url" || !isObject(p.image_url)) continue;
        seen.add(p);
        const url = String(p.image_url.url);
        image(url.startsWith("data:") ? url : null, dataUrl(url), p.image_url.detail);
      }
    }
  } else if (path.endsWith("/responses")) {
    const part = (p: Json, shot = false) => {
      if (p.type !== "input_image" && !shot) return;
      seen.add(p);
      const url = typeof p.image_url === "string" ? p.image_url : "";
      image(url.startsWith("data:") ? url : null, dataUrl(url), p.detail);
    };
    for (const item of each(body.input)) {
      for (const p of each(item.content)) part(p);
      for (const p of each(item.output)) part(p);
      if (item.type === "computer_call_output" && isObject(item.output)) part(item.output, true);
    }
  }
  if (hasFetched(body, seen, 0)) billed.unbounded = true;
  return billed;
}

const FETCHING = new Set(["image", "image_url", "input_image", "audio", "input_audio", "file", "input_file"]);
const MORE = new Set(["document", "container_upload", "search_result"]);

/** Media, files and URLs the provider reads outside the message content the fake looked at. */
function hasFetched(v: unknown, seen: Set<object>, depth: number): boolean {
  if (depth > 12 || v === null || typeof v !== "object" || seen.has(v)) return false;
  if (Array.isArray(v)) return v.some((x) => hasFetched(x, seen, depth + 1));
  const o = v as Json;
  if (typeof o.type === "string" && (FETCHING.has(o.type) || MORE.has(o.type))) {
    // A plain-text document is text of the body.
    if (!(o.type === "document" && isObject(o.source) && o.source.type === "text")) return true;
  }
  if (o.file_id != null || o.file_url != null || o.container != null) return true;
  return Object.values(o).some((x) => hasFetched(x, seen, depth + 1));
}

const PULLING_BETA = /(files-api|mcp-client|web-fetch|web-search|code-execution|skills)/;

/** Tools, state and betas that let the provider fill in input; the web fetch's bound when it has one. */
function toolsAndState(path: string, body: Json, beta: string): Billed {
  const billed: Billed = { tokens: 0, inlineChars: 0, unbounded: false };
  if (PULLING_BETA.test(beta)) billed.unbounded = true;
  if (body.mcp_servers != null || body.web_search_options != null) billed.unbounded = true;
  if (path.endsWith("/responses") && (body.previous_response_id ?? body.conversation ?? body.prompt) != null) {
    billed.unbounded = true;
  }
  for (const t of each(body.tools)) {
    const type = typeof t.type === "string" ? t.type : "function";
    if (type === "function" || type === "custom" || /^(bash|text_editor|computer|memory)_/.test(type)) continue;
    const uses = t.max_uses;
    const content = t.max_content_tokens;
    if (/^web_fetch_/.test(type) && typeof uses === "number" && typeof content === "number") {
      billed.tokens += uses * content;
    } else {
      billed.unbounded = true;
    }
  }
  return billed;
}

export function worstInput(path: string, body: Json, raw: string, beta: string, pulled: number): number {
  const tools = Array.isArray(body.tools) ? (body.tools as { type?: unknown }[]) : [];
  const schemaless = tools.filter((t) => typeof t?.type === "string" && t.type !== "function" && t.type !== "custom");
  const toolPrompt = tools.length ? 500 + 900 * schemaless.length : 0;
  const content = contentInput(path, body);
  const extra = toolsAndState(path, body, beta);
  if ((content.unbounded || extra.unbounded) && pulled) return pulled;
  const bytes = new TextEncoder().encode(raw).byteLength;
  const total = bytes - content.inlineChars + content.tokens + extra.tokens + toolPrompt;
  return pulled ? Math.min(total, pulled) : total;
}
