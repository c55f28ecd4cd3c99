import { describe, expect, it } from "vitest";
import { gatewayUrl, newSpendKey } from "./helpers.ts";

/** Faults that need a real network path (the workers project routes every fetch to the fake provider). */
describe("upstream faults over a real socket", () => {
  it("answers 502 when the provider cannot be reached (a closed port), and releases the hold", async () => {
    const { key, id, walletKey } = await newSpendKey({ spend_limit: { amount: "1", cycle: "daily" } });
    const res = await fetch(`${gatewayUrl()}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "llama-3.3-70b-versatile", messages: [{ role: "user", content: "hi" }] }),
    });
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { type: string; code: string; message: string } };
    expect(body.error).toMatchObject({ type: "server_error", code: "upstream_unreachable" });
    expect(body.error.message).not.toContain("127.0.0.1");
    const k = (await (await fetch(`${gatewayUrl()}/v1/spend_keys/${id}`, { headers: { authorization: `Bearer ${walletKey}` } })).json()) as { current_spend: string };
    expect(k.current_spend).toBe("0.00");
  });
});
