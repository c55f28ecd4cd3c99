/**
 * Splits an SSE byte stream at event boundaries without decoding it. Only events whose bytes contain
 * `"usage"` (the figures) or `"delta"` (the text delivered, for a cut stream's estimate) are decoded and
 * parsed; every other event is forwarded as the same bytes.
 */

const NEEDLES = ['"usage"', '"delta"'].map((s) => new TextEncoder().encode(s));
const metered = (event: Uint8Array) => NEEDLES.some((n) => indexOf(event, n) !== -1);
const LF = 10;
const CR = 13;

function indexOf(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  const first: number = needle[0] ?? -1;
  if (first < 0) return -1;
  outer: for (
    let i = hay.indexOf(first, from);
    i !== -1 && i <= hay.length - needle.length;
    i = hay.indexOf(first, i + 1)
  ) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** End (exclusive) of the first complete event in `buf` from `from`, or -1. Handles \n\n and \r\n\r\n. */
function eventEnd(buf: Uint8Array, from: number): number {
  for (let i = buf.indexOf(LF, from); i !== -1; i = buf.indexOf(LF, i + 1)) {
    if (buf[i + 1] === LF) return i + 2;
    if (buf[i + 1] === CR && buf[i + 2] === LF) return i + 3;
  }
  return -1;
}

export interface SseEvent {
  /** `data:` payload parsed as JSON (undefined when absent or not JSON, e.g. `[DONE]`) */
  data: unknown;
}

export class SseScanner {
  private pending: Uint8Array = new Uint8Array(0);
  private decoder = new TextDecoder();

  /**
   * @param onUsageEvent called for each event that mentions usage or a delta; return false to drop its bytes
   *   (the usage chunk the gateway asked for on the client's behalf).
   */
  constructor(private readonly onUsageEvent: (event: SseEvent) => boolean) {}

  /** Feeds a chunk; returns the bytes to forward now (complete events only). */
  push(chunk: Uint8Array): Uint8Array[] {
    let buf = chunk;
    if (this.pending.length) {
      buf = new Uint8Array(this.pending.length + chunk.length);
      buf.set(this.pending);
      buf.set(chunk, this.pending.length);
    }
    const out: Uint8Array[] = [];
    let start = 0;
    let keepFrom = 0; // start of the bytes not yet forwarded
    for (let end = eventEnd(buf, 0); end !== -1; end = eventEnd(buf, start)) {
      const event = buf.subarray(start, end);
      if (metered(event) && !this.onUsageEvent(this.parse(event))) {
        if (start > keepFrom) out.push(buf.subarray(keepFrom, start));
        keepFrom = end;
      }
      start = end;
    }
    if (start > keepFrom) out.push(buf.subarray(keepFrom, start));
    this.pending = start < buf.length ? buf.slice(start) : new Uint8Array(0);
    return out;
  }

  /** At end of stream: whatever is left (an unterminated last event), metered too. */
  end(): Uint8Array | null {
    const rest = this.pending;
    this.pending = new Uint8Array(0);
    if (!rest.length) return null;
    if (metered(rest) && !this.onUsageEvent(this.parse(rest))) return null;
    return rest;
  }

  private parse(event: Uint8Array): SseEvent {
    const text = this.decoder.decode(event);
    let data = "";
    for (const line of text.split(/\r?\n/)) {
      if (line.startsWith("data:")) data += (data ? "\n" : "") + line.slice(line[5] === " " ? 6 : 5);
    }
    try {
      return { data: data ? JSON.parse(data) : undefined };
    } catch {
      return { data: undefined };
    }
  }
}
