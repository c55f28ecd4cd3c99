import { and, desc, eq, getTableColumns, lt, or, type SQL } from "drizzle-orm";
import type { SQLiteColumn, SQLiteTable } from "drizzle-orm/sqlite-core";
import { database } from "../db/client.ts";
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

/** A table listed newest first: its keyset columns are `createdAt` and an id column. */
type Listable = SQLiteTable & { createdAt: SQLiteColumn };

/**
 * One page of a newest-first list, as every list route answers it: `{ data, has_more, next_cursor? }`.
 * `scope` limits the rows (the caller's wallet, a filter); `id` is the table's id column, the keyset's tie-break.
 */
export async function listPage<T extends Listable, W>(
  d1: D1Database,
  table: T,
  id: SQLiteColumn,
  scope: SQL | undefined,
  q: { cursor?: string | undefined; limit: number },
  wire: (r: T["$inferSelect"]) => W,
) {
  const rows = (await database(d1)
    .select()
    .from(table as SQLiteTable)
    .where(and(scope, afterCursor(q.cursor, table.createdAt, id)))
    .orderBy(desc(table.createdAt), desc(id))
    .limit(q.limit + 1)
    .all()) as T["$inferSelect"][];
  const more = rows.length > q.limit;
  const kept = more ? rows.slice(0, q.limit) : rows;
  const last = kept[kept.length - 1] as Record<string, unknown> | undefined;
  const cursorOf = (r: Record<string, unknown>) => encodeCursor(Number(r.createdAt), String(r[keyOf(table, id)]));
  return {
    data: kept.map(wire),
    has_more: more,
    ...(more && last ? { next_cursor: cursorOf(last) } : {}),
  };
}

/** The property name under which `column` appears in the table's rows. */
function keyOf(table: SQLiteTable, column: SQLiteColumn): string {
  const found = Object.entries(getTableColumns(table)).find(([, c]) => c === column);
  if (!found) throw new Error(`column ${column.name} is not in the table`);
  return found[0];
}
