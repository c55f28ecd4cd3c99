import { getTableColumns } from "drizzle-orm";
import { requests } from "./schema.ts";

/**
 * The ledger's columns in one fixed order, from the drizzle schema: the KeyGuard packs its rows as JSON arrays
 * in this order and the bookkeeping consumer unpacks them into `requests` in the same order. Plain SQL rather
 * than drizzle's query builder on both sides: they run once per flush and per batch, on hot isolates.
 */
export const LEDGER_COLUMNS = Object.entries(getTableColumns(requests))
  // Retention's working column is D1's alone: the guard never has it.
  .filter(([key]) => key !== "archivePart")
  .map(([key, col]) => ({
    key,
    name: col.name,
    // Rows kept from before a column existed take its default.
    fallback: col.default === undefined ? null : col.default,
  }));

/** A column's default as an SQL literal (defaults are numbers, strings and booleans). */
export function sqlLiteral(v: unknown): string {
  if (v === null || v === undefined) return "NULL";
  if (typeof v === "boolean") return v ? "1" : "0";
  if (typeof v === "number") return String(v);
  return `'${String(v).replaceAll("'", "''")}'`;
}
