import { and, desc, eq, lt, or, type SQL } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import { ApiError } from "./errors.ts";

/**
 * Opaque keyset cursors for newest-first lists: the (created_at, id) of the last row of a page.
 * Keyset rather than offset, so rows created while a client pages never shift or repeat a page.
 */
export function encodeCursor(createdAt: number, id: string): string {
  return btoa(JSON.stringify([createdAt, id]))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

export function decodeCursor(cursor: string): [number, string] {
  try {
    const parsed: unknown = JSON.parse(atob(cursor.replace(/-/g, "+").replace(/_/g, "/")));
    if (Array.isArray(parsed) && typeof parsed[0] === "number" && typeof parsed[1] === "string") {
      return [parsed[0], parsed[1]];
    }
  } catch {
    // fall through to the 400
  }
  throw new ApiError("invalid_request", "cursor: not a cursor returned by this API", { param: "cursor" });
}

/** The WHERE clause that continues a newest-first list after `cursor`. */
function afterCursor(cursor: string | undefined, createdAt: SQLiteColumn, id: SQLiteColumn): SQL | undefined {
  if (!cursor) return undefined;
  const [at, last] = decodeCursor(cursor);
  return or(lt(createdAt, at), and(eq(createdAt, at), lt(id, last)));
}

/**
 * One page of a newest-first list, as every list route answers it: `{ data, has_more, next_cursor? }`.
 * `fetch` runs the route's own query with the keyset condition, the order and how many rows to take
 * (one more than the page, to know whether more follow).
 */
export async function listPage<R, W>(
  q: { cursor?: string | undefined; limit: number },
  keys: { createdAt: SQLiteColumn; id: SQLiteColumn; of: (r: R) => [number, string] },
  fetch: (after: SQL | undefined, order: SQL[], take: number) => Promise<R[]>,
  wire: (r: R) => W,
) {
  const rows = await fetch(
    afterCursor(q.cursor, keys.createdAt, keys.id),
    [desc(keys.createdAt), desc(keys.id)],
    q.limit + 1,
  );
  const more = rows.length > q.limit;
  const kept = more ? rows.slice(0, q.limit) : rows;
  const last = kept[kept.length - 1];
  return {
    data: kept.map(wire),
    has_more: more,
    ...(more && last ? { next_cursor: encodeCursor(...keys.of(last)) } : {}),
  };
}
