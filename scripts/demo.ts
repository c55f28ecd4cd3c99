/**
 * `npm run demo`: the whole spend-key story against a local gateway, told step by step.
 * Uses the gateway at GATEWAY_URL (default http://127.0.0.1:8787) when one answers there — e.g. `npm run dev` —
 * and otherwise starts its own (local D1 + Durable Objects + the fake provider) for the length of the demo.
 */

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { Lava } from "@lavapayments/nodejs";
import OpenAI from "openai";
import { ROOT, type Stack, startStack } from "./lib/stack.ts";

const bold = (s: string) => `\x1b[1m${s}\x1b[0m`;
const dim = (s: string) => `\x1b[2m${s}\x1b[0m`;
const step = (n: number, title: string) => console.log(`\n${bold(`${n}. ${title}`)}`);
const say = (s: string) => console.log(`   ${s}`);

let url = process.env.GATEWAY_URL ?? "http://127.0.0.1:8787";
let adminToken = process.env.ADMIN_TOKEN ?? "dev-admin-token";
let stack: Stack | null = null;
try {
  await fetch(`${url}/v1/models`);
} catch {
  console.log(dim(`No gateway at ${url}: starting one (fake provider, local state) for this demo…`));
  stack = await startStack({ fake: true, quiet: true });
  url = stack.url;
  adminToken = stack.adminToken;
}

async function walletKey(): Promise<string> {
  const saved = join(ROOT, ".wrangler", "spendgate-dev-wallet.json");
  if (!stack && existsSync(saved))
    return (JSON.parse(readFileSync(saved, "utf8")) as { secret_key: string }).secret_key;
  const res = await fetch(`${url}/admin/wallets`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "demo wallet" }),
  });
  if (!res.ok)
    throw new Error(`creating a wallet needs the operator token (ADMIN_TOKEN): ${res.status} ${await res.text()}`);
  return ((await res.json()) as { secret_key: string }).secret_key;
}

try {
  const lava = new Lava(await walletKey(), { baseUrl: `${url}/v1/` });

  step(1, "A wallet owner creates spend keys with the Lava SDK (only baseUrl changed)");
  const agent = await lava.spendKeys.create({
    name: "research-agent",
    allowed_models: ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-20250514"],
    spend_limit: { amount: "0.002", cycle: "daily" },
    rate_limit: { rpm: 600, burst: 20 },
  });
  const claude = await lava.spendKeys.create({
    name: "claude-coder",
    request_shape: "anthropic",
    request_limit: { count: 100, cycle: "daily" },
  });
  say(
    `openai-shaped key    ${agent.key_preview}  ` +
      `spend limit $${agent.spend_limit!.amount}/${agent.spend_limit!.cycle}, ${agent.rate_limit!.rpm} rpm`,
  );
  say(
    `anthropic-shaped key ${claude.key_preview}  ` +
      `${claude.request_limit!.count} requests/${claude.request_limit!.cycle}`,
  );

  step(2, "The agent uses them as ordinary provider keys (openai and @anthropic-ai/sdk, only baseURL changed)");
  const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: agent.key, maxRetries: 0 });
  const chat = await openai.chat.completions.create({
    model: "gpt-4o-mini",
    max_tokens: 50,
    messages: [{ role: "user", content: "Say hello" }],
  });
  say(
    `chat (JSON):   "${chat.choices[0]!.message.content}"  ` +
      dim(`${chat.usage!.prompt_tokens} in / ${chat.usage!.completion_tokens} out tokens`),
  );
  const stream = await openai.chat.completions.create({
    model: "gpt-4o-mini",
    max_tokens: 50,
    stream: true,
    messages: [{ role: "user", content: "Stream please" }],
  });
  let streamed = "";
  for await (const c of stream) streamed += c.choices[0]?.delta?.content ?? "";
  say(`chat (stream): "${streamed}"`);
  const anthropic = new Anthropic({ baseURL: url, apiKey: claude.key, maxRetries: 0 });
  const msg = await anthropic.messages.create({
    model: "claude-sonnet-4-20250514",
    max_tokens: 100,
    messages: [{ role: "user", content: "Hi Claude" }],
  });
  say(`messages (JSON): "${msg.content[0]!.type === "text" ? msg.content[0]!.text : ""}"`);
  const final = await anthropic.messages
    .stream({
      model: "claude-sonnet-4-20250514",
      max_tokens: 100,
      messages: [{ role: "user", content: "Stream, Claude" }],
    })
    .finalMessage();
  say(`messages (stream): ${final.usage.output_tokens} output tokens metered`);

  step(3, "The rate limit: a key allowed 2 requests at once, then 1 per second");
  const burst = await lava.spendKeys.create({ name: "bursty", rate_limit: { rpm: 60, burst: 2 } });
  const b = new OpenAI({ baseURL: `${url}/v1`, apiKey: burst.key, maxRetries: 0 });
  for (let i = 1; i <= 3; i++) {
    try {
      await b.chat.completions.create({
        model: "gpt-4o-mini",
        max_tokens: 5,
        messages: [{ role: "user", content: "ping" }],
      });
      say(`request ${i}: 200`);
    } catch (e) {
      const err = e as InstanceType<typeof OpenAI.APIError>;
      say(
        `request ${i}: ${err.status} ${err.code} — retry-after ${err.headers?.get("retry-after")}s ` +
          `(retry-after-ms ${err.headers?.get("retry-after-ms")})`,
      );
    }
  }

  step(4, "Spend grows with every request until the hard cap refuses");
  for (let i = 1; ; i++) {
    try {
      await openai.chat.completions.create({
        model: "gpt-4o",
        max_tokens: 20,
        messages: [{ role: "user", content: `question ${i}` }],
      });
      const k = await lava.spendKeys.retrieve(agent.spend_key_id);
      say(`request ${i}: spent $${k.current_spend} of $${k.spend_limit!.amount}`);
    } catch (e) {
      const err = e as InstanceType<typeof OpenAI.APIError>;
      say(
        `request ${i}: ${err.status} ${err.code} (x-should-retry: ${err.headers?.get("x-should-retry")}) — ` +
          err.message.replace(/^\d+ /, ""),
      );
      break;
    }
    if (i > 50) break;
  }

  step(5, "The owner restricts models: the change acts on the very next request");
  await lava.spendKeys.update(agent.spend_key_id, {
    allowed_models: ["gpt-4o-mini"],
    spend_limit: { amount: "1.00", cycle: "daily" },
  });
  try {
    await openai.chat.completions.create({
      model: "gpt-4o",
      max_tokens: 5,
      messages: [{ role: "user", content: "hi" }],
    });
  } catch (e) {
    say(`gpt-4o now: ${apiError(e).status} ${apiError(e).code}`);
  }
  await openai.chat.completions.create({
    model: "gpt-4o-mini",
    max_tokens: 5,
    messages: [{ role: "user", content: "hi" }],
  });
  say("gpt-4o-mini still: 200");

  step(6, "Rotate: same key id, limits and counters; the old secret fails at once");
  const rotated = await lava.spendKeys.rotate(agent.spend_key_id);
  try {
    await openai.chat.completions.create({
      model: "gpt-4o-mini",
      max_tokens: 5,
      messages: [{ role: "user", content: "hi" }],
    });
  } catch (e) {
    say(`old key: ${apiError(e).status} ${apiError(e).code}`);
  }
  const fresh = new OpenAI({ baseURL: `${url}/v1`, apiKey: rotated.key, maxRetries: 0 });
  await fresh.chat.completions.create({
    model: "gpt-4o-mini",
    max_tokens: 5,
    messages: [{ role: "user", content: "hi" }],
  });
  say(`new key ${rotated.key_preview}: 200`);

  step(7, "Usage: keys and the per-request ledger");
  await new Promise((r) => setTimeout(r, 1500)); // the ledger reaches D1 within ~1 s
  for (const k of (await lava.spendKeys.list()).data) {
    say(`${k.name.padEnd(16)} ${String(k.total_requests).padStart(3)} requests  $${k.total_spend} spent`);
  }
  const ledger = (await lava.requests.list({ limit: 5 })) as unknown as {
    data: { model: string; cost: string; stream: boolean; status: string }[];
  };
  for (const r of ledger.data)
    say(dim(`${r.status.padEnd(9)} ${r.model.padEnd(26)} ${r.stream ? "stream" : "json  "}  $${r.cost}`));

  step(8, "An orchestrator mints keys for its sub-agents, carved from its own budget (no wallet key needed)");
  const orchestrator = await lava.spendKeys.create({
    name: "orchestrator",
    spend_limit: { amount: "0.01", cycle: "daily" },
    delegation: { max_depth: 1, max_children: 2 },
  } as Parameters<typeof lava.spendKeys.create>[0]);
  const mintChild = async (body: Record<string, unknown>) => {
    const res = await fetch(`${url}/v1/key/children`, {
      method: "POST",
      headers: { authorization: `Bearer ${orchestrator.key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`minting a child key: ${res.status} ${await res.text()}`);
    return (await res.json()) as { key: string; spend_key_id: string; name: string; spend_limit: { amount: string } };
  };
  const researcher = await mintChild({ name: "researcher", spend_limit: { amount: "0.006" } });
  const writer = await mintChild({ name: "writer", spend_limit: { amount: "0.0005" }, allowed_models: ["gpt-4o"] });
  const orchestratorView = async () => {
    const res = await fetch(`${url}/v1/key`, { headers: { authorization: `Bearer ${orchestrator.key}` } });
    return (await res.json()) as { carved_spend: string; remaining: { spend: string } };
  };
  for (const k of [researcher, writer])
    say(`${k.name.padEnd(10)} carve $${k.spend_limit.amount} of the orchestrator's day`);
  let view = await orchestratorView();
  say(`orchestrator: $${view.carved_spend} carved for its sub-agents, $${view.remaining.spend} left for itself`);
  const writerClient = new OpenAI({ baseURL: `${url}/v1`, apiKey: writer.key, maxRetries: 0 });
  for (let i = 1; i <= 10; i++) {
    try {
      await writerClient.chat.completions.create({
        model: "gpt-4o",
        max_tokens: 20,
        messages: [{ role: "user", content: `draft ${i}` }],
      });
      say(`writer request ${i}: 200`);
    } catch (e) {
      say(
        `writer request ${i}: ${apiError(e).status} ${apiError(e).code} — ${apiError(e).message.replace(/^\d+ /, "")}`,
      );
      break;
    }
  }
  await lava.spendKeys.revoke(writer.spend_key_id);
  view = await orchestratorView();
  say(`writer revoked: its unspent carve returns — $${view.carved_spend} carved now, $${view.remaining.spend} left`);

  step(9, "Revoke: the key fails on its very next request");
  await lava.spendKeys.revoke(agent.spend_key_id);
  try {
    await fresh.chat.completions.create({
      model: "gpt-4o-mini",
      max_tokens: 5,
      messages: [{ role: "user", content: "hi" }],
    });
  } catch (e) {
    say(`revoked key: ${apiError(e).status} ${apiError(e).code}`);
  }
  console.log(`\n${bold("Done.")} Every figure above came from the gateway${stack ? " (fake provider)" : ""}.`);
} finally {
  await stack?.stop();
}

function apiError(e: unknown): InstanceType<typeof OpenAI.APIError> {
  return e as InstanceType<typeof OpenAI.APIError>;
}
