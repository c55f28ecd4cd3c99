import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { gatewayUrl, newSpendKey } from "./helpers.ts";

/**
 * The model ids today's tools send — current models, undated aliases, dated snapshots — reach the provider
 * through a spend-limited key with the official clients, and each is metered at the model that prices it.
 */
const OPENAI_IDS: [asked: string, priced: string][] = [
  ["gpt-5.1", "gpt-5.1"],
  ["gpt-5.2", "gpt-5.2"],
  ["gpt-5.4", "gpt-5.4"],
  ["gpt-5.5", "gpt-5.5"],
  ["gpt-5-pro", "gpt-5-pro"],
  ["gpt-5-codex", "gpt-5"],
  ["o1", "o1"],
  ["o3-pro", "o3-pro"],
  ["gpt-4o-2024-08-06", "gpt-4o"],
];
const ANTHROPIC_IDS: [asked: string, priced: string][] = [
  ["claude-opus-4-6", "claude-opus-4-6"],
  ["claude-sonnet-4-6", "claude-sonnet-4-6"],
  ["claude-sonnet-4-5", "claude-sonnet-4-5"],
  ["claude-haiku-4-5", "claude-haiku-4-5"],
  ["claude-opus-4-1", "claude-opus-4-1"],
  ["claude-sonnet-4-5-20250929", "claude-sonnet-4-5"],
];

interface Row {
  model: string;
  priced_model: string;
  cost: string | null;
}

/** The key's ledger once every request has been flushed to D1. */
async function ledger(walletKey: string, id: string, count: number): Promise<Row[]> {
  for (let i = 0; i < 50; i++) {
    const res = await fetch(`${gatewayUrl()}/v1/requests?spend_key_id=${id}&limit=100`, {
      headers: { authorization: `Bearer ${walletKey}` },
    });
    const rows = ((await res.json()) as { data: Row[] }).data;
    if (rows.length >= count) return rows;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("the ledger did not arrive");
}

describe("current model ids through a spend key", () => {
  it("openai: every current id answers 200 and is metered at the model that prices it", async () => {
    const { key, id, walletKey } = await newSpendKey({ spend_limit: { amount: "50", cycle: "monthly" } });
    const client = new OpenAI({ baseURL: `${gatewayUrl()}/v1`, apiKey: key, maxRetries: 0 });
    for (const [model] of OPENAI_IDS) {
      const { data, response } = await client.chat.completions
        .create({ model, messages: [{ role: "user", content: "Say hello" }] })
        .withResponse();
      expect(data.choices[0]!.message.content).toContain("hello");
      expect(Number(response.headers.get("x-spendgate-cost"))).toBeGreaterThan(0);
    }
    const rows = await ledger(walletKey, id, OPENAI_IDS.length);
    for (const [asked, priced] of OPENAI_IDS) {
      expect(rows.find((r) => r.model === asked)).toMatchObject({ priced_model: priced, cost: expect.any(String) });
    }
  });

  it("anthropic: current ids and the undated aliases coding tools send answer 200, metered", async () => {
    const { key, id, walletKey } = await newSpendKey({
      request_shape: "anthropic",
      spend_limit: { amount: "50", cycle: "monthly" },
    });
    const client = new Anthropic({ baseURL: gatewayUrl(), apiKey: key, maxRetries: 0 });
    for (const [model] of ANTHROPIC_IDS) {
      const msg = await client.messages.create({
        model,
        max_tokens: 1_000,
        messages: [{ role: "user", content: "Say hello" }],
      });
      expect(msg.usage.output_tokens).toBe(12);
    }
    const rows = await ledger(walletKey, id, ANTHROPIC_IDS.length);
    for (const [asked, priced] of ANTHROPIC_IDS) {
      const row = rows.find((r) => r.model === asked);
      expect(row).toMatchObject({ priced_model: priced });
      expect(Number(row!.cost)).toBeGreaterThan(0);
    }
    // Listed under the id asked for, too.
    expect((await client.models.retrieve("claude-sonnet-4-5")).id).toBe("claude-sonnet-4-5");
  });
});
