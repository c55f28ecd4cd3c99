/** ISO 8601 UTC, or null: how every time leaves the API (inside, times are ms since the epoch). */
export function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
