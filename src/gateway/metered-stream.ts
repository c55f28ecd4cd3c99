import type { SettleStatus } from "../guard/types.ts";
import type { Dialect } from "../lib/errors.ts";
import { SseScanner } from "./sse.ts";
import type { UsageReader } from "./usage.ts";

export interface MeteredStreamOptions {
  upstream: ReadableStream<Uint8Array>;
  /** whether the provider answered 2xx (an error stream is passed through, never reported as cut) */
  ok: boolean;
  dialect: Dialect;
  reader: UsageReader;
  /** drop the usage-only chunk the gateway asked for on the client's behalf */
  stripUsageChunk: boolean;
  /** aborts the upstream fetch (the gateway's time limit, or the end of a drain) */
  abort: AbortController;
  waitUntil: (p: Promise<unknown>) => void;
  /** after the client disconnects, how long to keep reading upstream to learn the usage before aborting it */
  drainMs: number;
  /** settles the request, once (a cut stream is charged from what the reader saw) */
  settle: (status: SettleStatus) => Promise<void>;
}

/**
 * The provider's stream, forwarded event by event as it arrives (pull-based: nothing is buffered beyond the
 * event being completed), metered on the way, and settled in its end — before the client sees it close.
 * If the client leaves, the upstream is read on (bounded) to learn the real usage, then settled.
 */
export function meteredStream(o: MeteredStreamOptions): ReadableStream<Uint8Array> {
  const scanner = new SseScanner((event) => {
    o.reader.read(event.data);
    const d = event.data as { choices?: unknown[]; usage?: unknown } | undefined;
    return !(o.stripUsageChunk && d?.usage && Array.isArray(d.choices) && d.choices.length === 0);
  });
  const upstream = o.upstream.getReader();
  let settled = false;
  let clientGone = false;
  // workerd streams allow one pending read: a read in flight when the client leaves is the drain's to finish.
  let inflight: Promise<ReadableStreamReadResult<Uint8Array>> | null = null;
  const encoder = new TextEncoder();

  const finish = async (status: SettleStatus) => {
    if (settled) return;
    settled = true;
    await o.settle(status);
  };

  const drain = async () => {
    const deadline = setTimeout(() => o.abort.abort(), o.drainMs);
    try {
      for (;;) {
        const pending = inflight;
        inflight = null;
        const { done, value } = await (pending ?? upstream.read());
        if (done) break;
        scanner.push(value);
      }
      scanner.end();
    } catch {
      // the upstream was cut too: charged from what was seen
    } finally {
      clearTimeout(deadline);
      await upstream.cancel().catch(() => undefined);
      await finish("aborted");
    }
  };

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        for (;;) {
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            inflight = upstream.read();
            chunk = await inflight;
            inflight = null;
          } catch {
            if (clientGone) return;
            // The provider's stream broke after it started: say so in-band, as the provider would.
            await finish("error");
            controller.enqueue(encoder.encode(inBandError(o.dialect, o.abort.signal.aborted)));
            controller.close();
            return;
          }
          if (clientGone) return;
          if (chunk.done) {
            const rest = scanner.end();
            if (rest) controller.enqueue(rest);
            if (o.ok && !o.reader.usage()) {
              // It ended before the provider's final usage: the connection was cut.
              await finish("error");
              controller.enqueue(encoder.encode(inBandError(o.dialect, false)));
            } else {
              await finish(o.ok ? "completed" : "error");
            }
            controller.close();
            return;
          }
          const parts = scanner.push(chunk.value);
          if (parts.length) {
            for (const p of parts) controller.enqueue(p);
            return;
          }
        }
      },
      cancel() {
        clientGone = true;
        o.waitUntil(drain());
      },
    },
    { highWaterMark: 0 },
  );
}

/** An error after the stream started, in-band as each provider sends it. */
function inBandError(dialect: Dialect, timedOut: boolean): string {
  const message = timedOut
    ? "The provider's stream exceeded the gateway's time limit."
    : "The provider's stream was interrupted.";
  if (dialect === "anthropic") {
    return `event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "api_error", message } })}\n\n`;
  }
  const code = timedOut ? "upstream_timeout" : "upstream_interrupted";
  return `data: ${JSON.stringify({ error: { message, type: "server_error", param: null, code } })}\n\n`;
}
