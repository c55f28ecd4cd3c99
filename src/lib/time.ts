/** ISO 8601 UTC, or null: how every time leaves the API (inside, times are ms since the epoch). */
export function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** A UTC day in milliseconds (days are numbered from the epoch: `floor(ms / DAY_MS)`). */
export const DAY_MS = 86_400_000;
