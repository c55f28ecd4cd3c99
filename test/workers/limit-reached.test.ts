import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { keyGuard } from "../../src/guard/stub.ts";
import { admitInput, booked, hooks, json, mgmt, setupKey } from "./helpers.ts";

describe("spend_key.limit_reached", () => {
  it("is not raised while requests in flight fill the budget, and is raised once when spend reaches it", async () => {
    const { wallet, id } = await setupKey({ spend_limit: { amount: "0.001", cycle: "total" } });
    await json(
      await mgmt(wallet.key, "POST", "/webhooks", { name: "l", url: `https://hooks.example.test/l-${id}` }),
      201,
    );
    const guard = keyGuard(env, id);
    const secretHash = (await guard.inspect()).config!.secretHash;
    const admit = (requestId: string, nanos: number) => guard.admit(admitInput(secretHash, nanos, { requestId }));
    const settle = (requestId: string, nanos: number) =>
      guard.settle({
        requestId,
        status: "completed",
        usage: null,
        fallbackNanos: nanos,
        responseId: null,
        httpStatus: 200,
        latencyMs: 1,
      });
    const alerted = async () => (await guard.inspect()).counters.limitAlerted ?? [];

    // $0.0007 of $0.001 spent; $0.00025 more held by a request in flight.
    expect((await admit("req_a", 700_000)).ok).toBe(true);
    await settle("req_a", 700_000);
    expect((await admit("req_b", 250_000)).ok).toBe(true);
    // $0.0001 does not fit beside the hold in flight, but would fit once it settles: refused, the limit not reached.
    const early = await admit("req_c", 100_000);
    expect(early).toMatchObject({ ok: false, code: "spend_limit_exceeded", exhausted: false });
    expect(await alerted()).toEqual([]);
    // The request in flight settles: $0.00095 spent, and $0.0001 no longer fits the spend itself.
    await settle("req_b", 250_000);
    const late = await admit("req_d", 100_000);
    expect(late).toMatchObject({ ok: false, code: "spend_limit_exceeded", exhausted: true });
    expect(await alerted()).toHaveLength(1);
    expect((await admit("req_e", 100_000)).ok).toBe(false);

    // Delivered: one limit_reached, at 95 % (the spend), none at 70 %.
    await booked(id);
    const deadline = Date.now() + 10_000;
    const reached = async () =>
      (await hooks())
        .filter((h) => h.url.endsWith(`l-${id}`) && h.status === 200)
        .map((h) => JSON.parse(h.body) as { type: string; data: { spend_key: { current_spend: string } } })
        .filter((e) => e.type === "spend_key.limit_reached");
    while (!(await reached()).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 500));
    const events = await reached();
    expect(events).toHaveLength(1);
    expect(events[0]!.data.spend_key.current_spend).toBe("0.00095");
  });
});
