import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { unstable_readConfig } from "wrangler";
import { createFakeProvider } from "./scripts/fake-provider/handler.ts";
import { TEST_PROVIDER_KEYS } from "./test/provider-keys.ts";

/**
 * Two projects:
 * - `workers`: integration tests inside workerd (@cloudflare/vitest-plugin, the successor of
 *   @cloudflare/vitest-pool-workers). Every outbound fetch of the Worker reaches the project's fake provider
 *   through Miniflare's outbound service, so no test ever touches a real provider.
 * - `conformance`: the real `openai`, `@anthropic-ai/sdk`, `@lavapayments/nodejs` and Vercel AI SDK clients,
 *   in Node, against the Worker served by `wrangler dev` exactly as `npm run dev` serves it.
 */

/**
 * The webhook queues as wrangler.toml declares them (batch size, retries, dead letter queue), but flushed at once
 * instead of after `max_batch_timeout` (1 s): with the retry delays at 0 (WEBHOOK_RETRY_DELAYS below), each of a
 * delivery's 8 attempts would otherwise wait a whole second in Miniflare's queue before it runs. The bookkeeping
 * queue keeps its batch timeout: how its batches gather several keys is what the tests prove.
 */
function webhookQueuesFlushedAtOnce() {
  const { queues } = unstable_readConfig({ config: "./wrangler.toml" }, { hideWarnings: true });
  const consumers: Record<string, Record<string, unknown>> = {};
  for (const c of queues.consumers ?? []) {
    if (!c.queue.startsWith("spendgate-webhooks")) continue;
    consumers[c.queue] = {
      maxBatchSize: c.max_batch_size,
      maxBatchTimeout: 0,
      maxRetries: c.max_retries,
      deadLetterQueue: c.dead_letter_queue,
      retryDelay: c.retry_delay,
    };
  }
  if (Object.keys(consumers).length !== 2) throw new Error("wrangler.toml: the two webhook queue consumers moved");
  return consumers;
}

export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  const queueConsumers = webhookQueuesFlushedAtOnce();
  return {
    test: {
      // Vitest's default is one worker per core but one (2 - 1 on a 2-core machine: every file in turn). Most of the
      // suite's time is waiting (on wrangler dev, queues, subprocesses, timers), so files run side by side.
      maxWorkers: 3,
      projects: [
        {
          plugins: [
            // A function: each pool worker (its own Miniflare) calls it, so each gets a fake provider of its own and
            // files running side by side never see each other's provider requests or webhook deliveries.
            cloudflareTest(() => {
              const fake = createFakeProvider({ record: 2000 });
              return {
                wrangler: { configPath: "./wrangler.toml" },
                miniflare: {
                  bindings: {
                    TEST_MIGRATIONS: migrations,
                    ADMIN_TOKEN: "test-admin-token",
                    SPENDGATE_ENV: "test",
                    DISCONNECT_DRAIN_MS: "2000",
                    // Webhook retries at once in tests (the real schedule spans about 27 hours).
                    WEBHOOK_RETRY_DELAYS: "0,0,0,0,0,0,0",
                    ...TEST_PROVIDER_KEYS,
                  },
                  outboundService: (request: Request) => fake.handle(request),
                  queueConsumers,
                },
              };
            }),
          ],
          test: {
            name: "workers",
            include: ["test/workers/**/*.test.ts"],
            setupFiles: ["./test/workers/setup.ts"],
            testTimeout: 30_000,
          },
        },
        {
          test: {
            name: "conformance",
            include: ["test/conformance/**/*.test.ts"],
            environment: "node",
            globalSetup: ["./test/conformance/global-setup.ts"],
            testTimeout: 60_000,
            hookTimeout: 120_000,
          },
        },
      ],
    },
  };
});
