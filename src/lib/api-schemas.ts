import * as z from "zod/mini";
import { named } from "./openapi.ts";

/** Schema pieces every API family shares: names, pagination, instants, path ids, the error body and responses. */

/** A run id: 1–128 characters of letters, digits and `. _ : -` (safe in a header, a query and a log line). */
export const RUN_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** What a malformed run id is told, after the name of where it came from. */
export const RUN_ID_RULE = "a run id is 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':', '-'.";
export const RunId = z.string().check(z.regex(RUN_ID, "must be 1–128 characters of letters, digits and . _ : -"));

export const Name = z.string().check(z.trim(), z.minLength(1), z.maxLength(200));

/** Plain decimal digits only: `1e1`, `0x10`, ` 5` or `5.0` are refused, not coerced. */
const Limit = z.pipe(
  z
    .string()
    .check(z.regex(/^(100|[1-9][0-9]?)$/, "must be a whole number from 1 to 100 written in plain decimal digits")),
  z.transform(Number),
);

export const Pagination = z.object({
  cursor: z.optional(z.string().check(z.maxLength(200))),
  limit: z._default(Limit, 20),
});

export const listOf = <T extends z.ZodMiniType>(name: string, item: T) =>
  named(name, z.object({ data: z.array(item), has_more: z.boolean(), next_cursor: z.optional(z.string()) }));

/** A query's instant: a calendar date (UTC midnight) or a date-time with `Z` or an offset (`+01:00`). */
export const Instant = z.union([z.iso.datetime({ offset: true }), z.iso.date()], {
  error: "must be an ISO 8601 date or date-time, e.g. 2026-11-01 or 2026-11-01T00:00:00Z",
});

export const ErrorBody = named(
  "Error",
  z.object({
    error: z.object({ message: z.string(), type: z.string(), param: z.nullable(z.string()), code: z.string() }),
  }),
);

export const PathId = z.string().check(z.minLength(1), z.maxLength(200));
export const IdParam = z.object({ id: PathId });

/** The error responses every route documents. */
export const ERRORS = {
  400: { description: "Invalid input; `error.param` names the field", schema: ErrorBody },
  401: { description: "Missing or invalid credential", schema: ErrorBody },
  403: { description: "A credential of the wrong kind", schema: ErrorBody },
  404: { description: "Unknown id (another wallet's ids answer the same)", schema: ErrorBody },
};
