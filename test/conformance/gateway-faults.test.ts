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
    const k = (await (
      await fetch(`${gatewayUrl()}/v1/spend_keys/${id}`, { headers: { authorization: `Bearer ${walletKey}` } })
    ).json()) as { current_spend: string };
    expect(k.current_spend).toBe("0.00");
  });
});

describe("a connection reset mid-stream over a real socket", () => {
  it("ends the client's stream with an in-band error and settles the hold from what was received", async () => {
    const { key, id, walletKey } = await newSpendKey({ request_shape: "anthropic" });
    const res = await fetch(`${gatewayUrl()}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": key, "content-type": "application/json" },
      body: JSON.stringify({
        model: "claude-sonnet-4-20250514",
        max_tokens: 50,
        stream: true,
        messages: [{ role: "user", content: "[[fault:reset]] go" }],
      }),
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain("event: message_start");
    expect(text).toMatch(/event: error\ndata: \{"type":"error","error":\{"type":"api_error"/);
    const auth = { authorization: `Bearer ${walletKey}` };
    const k = (await (await fetch(`${gatewayUrl()}/v1/spend_keys/${id}`, { headers: auth })).json()) as {
      total_spend: string;
      total_requests: number;
    };
    expect(k.total_requests).toBe(1);
    expect(Number(k.total_spend)).toBeGreaterThan(0);
    let rows: { status: string; usage_known: boolean }[] = [];
    for (let i = 0; i < 30 && rows.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
      rows = (
        (await (await fetch(`${gatewayUrl()}/v1/requests?spend_key_id=${id}`, { headers: auth })).json()) as {
          data: typeof rows;
        }
      ).data;
    }
    expect(rows[0]).toMatchObject({ status: "error", usage_known: false });
  });
});
