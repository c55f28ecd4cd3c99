import type { keyGuard } from "../guard/stub.ts";
import type { SettleInput, SettleResult } from "../guard/types.ts";
import { errorText, log, type RequestLog } from "../lib/log.ts";

type Guard = ReturnType<typeof keyGuard>;
export type SettleFacts = Omit<SettleInput, "requestId" | "latencyMs">;

/**
 * The one settlement of an admitted request. Whatever path the exchange takes (answer, upstream error, cut
 * stream, client gone), `settle` runs once; later calls return the first result. `done` is what the request's
 * `waitUntil` keeps alive, so a settle is never dropped when the client leaves.
 */
export class Settlement {
  private result: Promise<SettleResult | null> | undefined;

  constructor(
    private readonly guard: Guard,
    private readonly requestId: string,
    private readonly started: number,
    /** what this request's log lines say about it */
    private readonly log: RequestLog,
  ) {}

  settle(facts: SettleFacts): Promise<SettleResult | null> {
    this.result ??= this.send({ ...facts, requestId: this.requestId, latencyMs: Date.now() - this.started });
    return this.result;
  }

  /**
   * The settle of an answer that is returned whole (JSON, speech): sent on the next timer turn, once the answer
   * is in the runtime's hands, so that the KeyGuard's work (its storage commit; on one machine, the same thread)
   * does not run ahead of the answer's bytes. The hold stays open until it lands, so the cap is unchanged.
   */
  afterAnswer(facts: SettleFacts): Promise<SettleResult | null> {
    const latencyMs = Date.now() - this.started;
    this.result ??= sleep(0).then(() => this.send({ ...facts, requestId: this.requestId, latencyMs }));
    return this.result;
  }

  /** Resolves when the settle (if any was started) has landed or finally failed. */
  get done(): Promise<unknown> {
    return this.result ?? Promise.resolve(null);
  }

  /**
   * Settles once more if the first RPC fails (settle is idempotent). If both fail the answer still goes out:
   * the hold stays open and its alarm charges it in full when it expires, so a lost settle never undercharges.
   */
  private async send(input: SettleInput): Promise<SettleResult | null> {
    try {
      return await this.guard.settle(input);
    } catch (err) {
      log("warn", "settle.retry", { ...this.log, error: errorText(err) });
      try {
        return await this.guard.settle(input);
      } catch (again) {
        log("error", "settle.lost", { ...this.log, error: errorText(again) });
        return null;
      }
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
