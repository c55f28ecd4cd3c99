/**
 * Provider API keys the tests configure; the fake provider records them so tests can see what it received.
 * Groq is left unconfigured on purpose (the 503 provider_not_configured case).
 */
import type { ApiKeyVar } from "../src/providers/registry.ts";

export const TEST_PROVIDER_KEYS = {
  OPENAI_API_KEY: "test-openai-provider-key",
  ANTHROPIC_API_KEY: "test-anthropic-provider-key",
  GOOGLE_API_KEY: "test-google-provider-key",
  MISTRAL_API_KEY: "test-mistral-provider-key",
  DEEPSEEK_API_KEY: "test-deepseek-provider-key",
  XAI_API_KEY: "test-xai-provider-key",
  TOGETHER_API_KEY: "test-together-provider-key",
  FIREWORKS_API_KEY: "test-fireworks-provider-key",
} as const satisfies Partial<Record<ApiKeyVar, string>>;
