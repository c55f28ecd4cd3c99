import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
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
const fake = createFakeProvider({ record: 2000 });

export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    test: {
      projects: [
        {
          plugins: [
            cloudflareTest({
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
              },
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
