/**
 * Where credentials are read: `Authorization: Bearer …`, and for spend keys `x-api-key: …` too (Anthropic SDKs,
 * curl examples). Query strings are never read.
 */
export function bearer(header: string | null | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1] ?? null;
}

export function spendKeyFrom(headers: Headers): string | null {
  const fromAuth = bearer(headers.get("authorization"));
  if (fromAuth) return fromAuth;
  const apiKey = headers.get("x-api-key")?.trim();
  return apiKey ? apiKey : null;
}
