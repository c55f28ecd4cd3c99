import type { SettleStatus } from "../guard/types.ts";
import type { Dialect } from "../lib/errors.ts";
import { errorText } from "../lib/log.ts";
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
  /** told why, when the provider's stream broke, ran out of time or ended before its usage (for the log) */
  cut: (why: string) => void;
}

/**
 * The provider's stream, forwarded event by event as it arrives (pull-based: nothing is buffered beyond the
 * event being completed), metered on the way, and settled in its end — before the client sees it close.
 * If the client leaves, the upstream is read on (bounded) to learn the real usage, then settled.
 */
export function meteredStream(o: MeteredStreamOptions): ReadableStream<Uint8Array> {
  const meter = new Meter(o);
  return new ReadableStream<Uint8Array>(
    { pull: (controller) => meter.pull(controller), cancel: () => meter.cancel() },
    { highWaterMark: 0 },
  );
}

const encoder = new TextEncoder();

/** One stream's state: what it has seen, whether it is settled, whether its client is still there. */
class Meter {
  private readonly scanner: SseScanner;
  private readonly upstream: ReadableStreamDefaultReader<Uint8Array>;
  private settled = false;
  private clientGone = false;
  /** workerd streams allow one pending read: a read in flight when the client leaves is the drain's to finish */
  private inflight: Promise<ReadableStreamReadResult<Uint8Array>> | null = null;

  constructor(private readonly o: MeteredStreamOptions) {
    this.scanner = new SseScanner((event) => {
      o.reader.read(event.data);
      const d = event.data as { choices?: unknown[]; usage?: unknown } | undefined;
      return !(o.stripUsageChunk && d?.usage && Array.isArray(d.choices) && d.choices.length === 0);
    });
    this.upstream = o.upstream.getReader();
  }

  /** Forwards the next complete events (reading on until there is one), or ends the stream. */
  async pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        this.inflight = this.upstream.read();
        chunk = await this.inflight;
        this.inflight = null;
      } catch (err) {
        if (this.clientGone) return;
        // The provider's stream broke after it started: say so in-band, as the provider would.
        const timedOut = this.o.abort.signal.aborted;
        this.o.cut(timedOut ? "the stream ran past UPSTREAM_TIMEOUT_MS" : `the stream broke: ${errorText(err)}`);
        await this.finish("error");
        controller.enqueue(encoder.encode(inBandError(this.o.dialect, this.o.abort.signal.aborted)));
        controller.close();
        return;
      }
      if (this.clientGone) return;
      if (chunk.done) return this.end(controller);
      const parts = this.scanner.push(chunk.value);
      if (parts.length) {
        for (const p of parts) controller.enqueue(p);
        return;
      }
    }
  }

  /** The client left: read on to learn the usage, then settle. */
  cancel(): void {
    this.clientGone = true;
    this.o.waitUntil(this.drain());
  }

  private async end(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    const rest = this.scanner.end();
    if (rest) controller.enqueue(rest);
    if (this.o.ok && !this.o.reader.usage()) {
      // It ended before the provider's final usage: the connection was cut.
      this.o.cut("the stream ended before the provider's usage");
      await this.finish("error");
      controller.enqueue(encoder.encode(inBandError(this.o.dialect, false)));
    } else {
      await this.finish(this.o.ok ? "completed" : "error");
    }
    controller.close();
  }

  private async finish(status: SettleStatus): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    await this.o.settle(status);
  }

  private async drain(): Promise<void> {
    const deadline = setTimeout(() => this.o.abort.abort(), this.o.drainMs);
    try {
      for (;;) {
        const pending = this.inflight;
        this.inflight = null;
        const { done, value } = await (pending ?? this.upstream.read());
        if (done) break;
        this.scanner.push(value);
      }
      this.scanner.end();
    } catch {
      // the upstream was cut too: charged from what was seen
    } finally {
      clearTimeout(deadline);
      await this.upstream.cancel().catch(() => undefined);
      await this.finish("aborted");
    }
  }
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
