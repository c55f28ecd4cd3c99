/** Provider API keys the tests configure; the fake provider records them so tests can see what it received. */
export const TEST_PROVIDER_KEYS = {
  OPENAI_API_KEY: "test-openai-provider-key",
  ANTHROPIC_API_KEY: "test-anthropic-provider-key",
  GOOGLE_API_KEY: "test-google-provider-key",
  MISTRAL_API_KEY: "test-mistral-provider-key",
} as const;
