/**
 * A spend key arrives as `Authorization: Bearer …` (OpenAI SDKs) or `x-api-key: …` (Anthropic SDKs, curl
 * examples). Query strings are never read.
 */
export function spendKeyFrom(headers: Headers): string | null {
  const auth = headers.get("authorization");
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1]!;
  }
  const apiKey = headers.get("x-api-key")?.trim();
  return apiKey ? apiKey : null;
}
