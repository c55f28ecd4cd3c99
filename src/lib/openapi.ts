import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../env.ts";
import { ApiError } from "./errors.ts";

interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
}

/** A zod failure as one 400 naming the field: `spend_limit.amount: must be a positive …`. */
export function validationError(issues: readonly Issue[]): ApiError {
  const issue = issues[0];
  if (!issue) return new ApiError("invalid_request", "Invalid request.");
  const base = issue.path.map(String).join(".");
  if (issue.code === "unrecognized_keys" && issue.keys?.length) {
    const field = [base, issue.keys[0]].filter(Boolean).join(".");
    return new ApiError("invalid_request", `${field}: unknown field`, { param: field });
  }
  const field = base || "body";
  return new ApiError("invalid_request", `${field}: ${issue.message}`, { param: field });
}

/** Routers of the operator and management APIs: zod validates, and the same schemas make /openapi.json. */
export function apiRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error.issues as readonly Issue[]);
    },
  });
}
