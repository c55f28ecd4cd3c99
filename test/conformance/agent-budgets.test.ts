import Anthropic from "@anthropic-ai/sdk";
import { Lava } from "@lavapayments/nodejs";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { gatewayUrl, newSpendKey } from "./helpers.ts";

/**
 * Budgets for agents through the official clients, as an orchestrator uses them: it mints a child key from its own
 * key (no wallet credential), hands it to a sub-agent's SDK, names each task with `x-spendgate-run`, and reads what
 * is left; the Lava SDK manages keys that use every new field.
 */

const base = () => gatewayUrl();

async function mintChild(parentKey: string, body: Record<string, unknown>) {
  const res = await fetch(`${base()}/v1/key/children`, {
    method: "POST",
    headers: { authorization: `Bearer ${parentKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`mint: ${res.status} ${text}`);
  return JSON.parse(text) as { key: string; spend_key_id: string; parent_key_id: string };
}

async function keyView(key: string, run?: string) {
  const res = await fetch(`${base()}/v1/key${run ? `?run=${run}` : ""}`, {
    headers: { authorization: `Bearer ${key}` },
  });
  return (await res.json()) as Record<string, any>;
}

describe("budgets for agents through the official clients", () => {
  it("openai: a child key carved from its parent, requests named by run", async () => {
    const parent = await newSpendKey({
      spend_limit: { amount: "5.00", cycle: "daily" },
      delegation: { max_depth: 1, max_children: 2 },
    });
    const child = await mintChild(parent.key, {
      name: "sub-agent",
      spend_limit: { amount: "1.00", cycle: "daily" },
      run_limit: { spend: "0.50", requests: 2 },
    });
    expect(child.parent_key_id).toBe(parent.id);
    const client = new OpenAI({
      baseURL: `${base()}/v1`,
      apiKey: child.key,
      maxRetries: 0,
      defaultHeaders: { "x-spendgate-run": "task-1" },
    });
    const messages = [{ role: "user" as const, content: "Say hello" }];
    const res = await client.chat.completions.create({ model: "gpt-4o-mini", messages, max_tokens: 50 });
    expect(res.choices[0]?.message.content).toContain("hello");
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages,
      max_tokens: 50,
      stream: true,
    });
    for await (const _ of stream) {
      /* drain */
    }
    // The run's third request passes its request limit: the SDK's own error class, with the limit named.
    const refused = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages, max_tokens: 50 })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    const err = refused as InstanceType<typeof OpenAI.RateLimitError>;
    expect(err.code).toBe("run_request_limit_exceeded");
    expect(err.headers?.get("x-spendgate-limit")).toBe("run_requests");
    // Another run of the same key carries on.
    const other = await client.chat.completions.create(
      { model: "gpt-4o-mini", messages, max_tokens: 50 },
      { headers: { "x-spendgate-run": "task-2" } },
    );
    expect(other.choices).toHaveLength(1);

    const run = (await keyView(child.key, "task-1")).run;
    expect(run.requests).toBe(2);
    expect(Number(run.spend)).toBeGreaterThan(0);
    expect((await keyView(parent.key)).carved_spend).toBe("1.00");
  });

  it("anthropic: a child key of an Anthropic-shaped parent, a run, and the carve that stops it", async () => {
    const parent = await newSpendKey({
      request_shape: "anthropic",
      spend_limit: { amount: "2.00", cycle: "monthly" },
      delegation: { max_depth: 1, max_children: 1 },
    });
    // A carve too small for even one request's worst case: the child's first request is refused by its carve.
    const child = await mintChild(parent.key, { name: "tiny", spend_limit: { amount: "0.000001", cycle: "monthly" } });
    const client = new Anthropic({
      baseURL: base(),
      apiKey: child.key,
      maxRetries: 0,
      defaultHeaders: { "x-spendgate-run": "review-7" },
    });
    const refused = await client.messages
      .create({ model: "claude-sonnet-4-20250514", max_tokens: 100, messages: [{ role: "user", content: "Hi" }] })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Anthropic.APIError);
    const err = refused as InstanceType<typeof Anthropic.APIError>;
    expect(err.status).toBe(402);
    expect(err.headers?.get("x-spendgate-limit")).toBe("carve");
    expect((err.error as { error: { code: string } }).error.code).toBe("carve_exceeded");
    // A second child would pass the parent's max_children: refused, nothing minted.
    const second = await fetch(`${base()}/v1/key/children`, {
      method: "POST",
      headers: { authorization: `Bearer ${parent.key}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "second", spend_limit: { amount: "0.10", cycle: "monthly" } }),
    });
    expect(second.status).toBeGreaterThanOrEqual(400);
    // The parent itself still works through the SDK, with a run of its own.
    const own = new Anthropic({ baseURL: base(), apiKey: parent.key, defaultHeaders: { "x-spendgate-run": "own" } });
    const msg = await own.messages.create({
      model: "claude-sonnet-4-20250514",
      max_tokens: 100,
      messages: [{ role: "user", content: "Hi" }],
    });
    expect(msg.usage.output_tokens).toBeGreaterThan(0);
  });

  it("the Lava SDK round-trips keys that use every new field", async () => {
    const { walletKey } = await newSpendKey();
    const lava = new Lava(walletKey, { baseUrl: `${base()}/v1/` });
    const created = await lava.spendKeys.create({
      name: "agent with everything",
      spend_limit: { amount: "10.00", cycle: "weekly" },
      // Fields the SDK's types do not know yet travel as they are.
      ...({
        token_limit: { count: 1_000_000, cycle: "weekly" },
        tokens_per_minute: 50_000,
        run_limit: { spend: "1.00", requests: 20 },
        delegation: { max_depth: 2, max_children: 3 },
      } as object),
    });
    const got = (await lava.spendKeys.retrieve(created.spend_key_id)) as unknown as Record<string, unknown>;
    expect(got).toMatchObject({
      token_limit: { count: 1_000_000, cycle: "weekly" },
      tokens_per_minute: 50_000,
      run_limit: { spend: "1.00", requests: 20 },
      delegation: { max_depth: 2, max_children: 3 },
      parent_key_id: null,
    });
    const updated = (await lava.spendKeys.update(created.spend_key_id, {
      name: "renamed",
    })) as unknown as Record<string, unknown>;
    expect(updated).toMatchObject({ name: "renamed", tokens_per_minute: 50_000, run_limit: { requests: 20 } });
    const listed = await lava.spendKeys.list();
    expect(listed.data.map((k) => k.spend_key_id)).toContain(created.spend_key_id);
    const rotated = await lava.spendKeys.rotate(created.spend_key_id);
    expect(rotated.key).toMatch(/^sk-sg-/);
    await lava.spendKeys.revoke(created.spend_key_id);
  });
});
