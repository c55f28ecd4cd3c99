import { and, eq, lt, or, type SQL } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import { ApiError } from "./errors.ts";

/**
 * Opaque keyset cursors for newest-first lists: the (created_at, id) of the last row of a page.
 * Keyset rather than offset, so rows created while a client pages never shift or repeat a page.
 */
export function encodeCursor(createdAt: number, id: string): string {
  return btoa(JSON.stringify([createdAt, id])).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
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
export function afterCursor(cursor: string | undefined, createdAt: SQLiteColumn, id: SQLiteColumn): SQL | undefined {
  if (!cursor) return undefined;
  const [at, last] = decodeCursor(cursor);
  return or(lt(createdAt, at), and(eq(createdAt, at), lt(id, last)));
}

/** Cuts the `limit + 1` rows fetched into a page with `has_more` and `next_cursor`. */
export function page<R, T>(rows: R[], limit: number, key: (r: R) => [number, string], wire: (r: R) => T) {
  const more = rows.length > limit;
  const kept = more ? rows.slice(0, limit) : rows;
  const last = kept[kept.length - 1];
  return {
    data: kept.map(wire),
    has_more: more,
    ...(more && last ? { next_cursor: encodeCursor(...key(last)) } : {}),
  };
}
