import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import * as z from "zod/mini";
import en from "zod/v4/locales/en.js";
import type { AppEnv, WalletEnv } from "../env.ts";
import { ApiError } from "./errors.ts";

/**
 * Routes of the operator and management APIs, declared once: the same zod schemas validate each request and
 * describe it in `/openapi.json`. zod/mini with only the English messages keeps the Worker bundle small
 * (the full zod build and an OpenAPI library would triple it).
 */
z.config(en());

/** The largest management or operator request body; larger ones are refused (413) before being read whole. */
export const MAX_MANAGEMENT_BODY_BYTES = 256 * 1024;
const limitBody = bodyLimit({
  maxSize: MAX_MANAGEMENT_BODY_BYTES,
  onError: () => {
    throw new ApiError("request_too_large", `The request body exceeds ${MAX_MANAGEMENT_BODY_BYTES} bytes.`);
  },
});

type Schema = z.ZodMiniType;

export interface RouteSpec<P extends Schema | undefined, Q extends Schema | undefined, B extends Schema | undefined> {
  method: "get" | "post" | "put" | "patch" | "delete";
  /** OpenAPI style: `/spend_keys/{id}` */
  path: string;
  summary: string;
  tags: string[];
  security: "walletKey" | "adminToken" | "spendKey";
  params?: P;
  query?: Q;
  body?: B;
  /** an empty body reads as `{}` (a route whose every body field is optional, called by clients that send none) */
  optionalBody?: boolean;
  responses: Record<number, { description: string; schema?: Schema }>;
}

type Out<S> = S extends Schema ? z.output<S> : undefined;

interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
}

/** A zod failure as one 400 naming the field: `spend_limit.amount: must be a positive …`. */
export function validationError(issues: readonly Issue[], where?: string): ApiError {
  const issue = issues[0];
  if (!issue) return new ApiError("invalid_request", "Invalid request.");
  const base = issue.path.map(String).join(".");
  if (issue.code === "unrecognized_keys" && issue.keys?.length) {
    const field = [base, issue.keys[0]].filter(Boolean).join(".");
    return new ApiError("invalid_request", `${field}: unknown field`, { param: field });
  }
  const field = base || where || "body";
  return new ApiError("invalid_request", `${field}: ${issue.message}`, { param: field });
}

function parse<S extends Schema>(schema: S, value: unknown, where: string): z.output<S> {
  const result = z.safeParse(schema, value);
  if (!result.success) throw validationError(result.error.issues as readonly Issue[], where);
  return result.data;
}

/** Names given to schemas become `#/components/schemas/<name>` in the document. */
const names = new Map<Schema, string>();
export function named<S extends Schema>(name: string, schema: S): S {
  names.set(schema, name);
  return schema;
}

/** Routes validated and documented by their schemas; `E` is the environment the handlers see. */
export class ApiRouter<E extends AppEnv = WalletEnv> {
  readonly app = new Hono<E>();
  readonly specs: RouteSpec<Schema | undefined, Schema | undefined, Schema | undefined>[] = [];

  route<P extends Schema | undefined, Q extends Schema | undefined, B extends Schema | undefined>(
    spec: RouteSpec<P, Q, B>,
    handler: (c: Context<E>, input: { params: Out<P>; query: Out<Q>; body: Out<B> }) => Promise<Response>,
  ): this {
    this.specs.push(spec);
    this.app.on(spec.method.toUpperCase(), spec.path.replace(/\{(\w+)\}/g, ":$1"), limitBody, async (c) => {
      const params = (spec.params ? parse(spec.params, c.req.param(), "path") : undefined) as Out<P>;
      const query = (spec.query ? parse(spec.query, c.req.query(), "query") : undefined) as Out<Q>;
      let body = undefined as Out<B>;
      if (spec.body) {
        let json: unknown;
        try {
          const text = await c.req.text();
          json = spec.optionalBody && text.trim() === "" ? {} : JSON.parse(text);
        } catch {
          throw new ApiError("invalid_request", "body: the request body is not valid JSON", { param: "body" });
        }
        body = parse(spec.body, json, "body") as Out<B>;
      }
      return handler(c as unknown as Context<E>, { params, query, body });
    });
    return this;
  }
}

function jsonSchema(schema: Schema, io: "input" | "output", components: Record<string, unknown>): unknown {
  const name = names.get(schema);
  const rendered = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Record<string, unknown>;
  delete rendered.$schema;
  if (!name) return rendered;
  components[name] ??= rendered;
  return { $ref: `#/components/schemas/${name}` };
}

/** The OpenAPI 3.1 document of the given routers mounted at their prefixes. */
export function openApiDocument(
  mounts: [prefix: string, router: { specs: ApiRouter["specs"] }][],
  info: { title: string; version: string; description: string },
) {
  const components: Record<string, unknown> = {};
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [prefix, router] of mounts) {
    for (const spec of router.specs) {
      const parameters: unknown[] = [];
      for (const [where, schema] of [
        ["path", spec.params],
        ["query", spec.query],
      ] as const) {
        if (!schema) continue;
        const { properties = {}, required = [] } = z.toJSONSchema(schema, { io: "input" }) as {
          properties?: Record<string, unknown>;
          required?: string[];
        };
        for (const [name, s] of Object.entries(properties))
          parameters.push({ name, in: where, required: where === "path" || required.includes(name), schema: s });
      }
      const responses: Record<string, unknown> = {};
      for (const [status, r] of Object.entries(spec.responses)) {
        responses[status] = {
          description: r.description,
          ...(r.schema
            ? { content: { "application/json": { schema: jsonSchema(r.schema, "output", components) } } }
            : {}),
        };
      }
      const operations = paths[prefix + spec.path] ?? {};
      paths[prefix + spec.path] = operations;
      operations[spec.method] = {
        summary: spec.summary,
        tags: spec.tags,
        security: [{ [spec.security]: [] }],
        ...(parameters.length ? { parameters } : {}),
        ...(spec.body
          ? {
              requestBody: {
                required: !spec.optionalBody,
                content: { "application/json": { schema: jsonSchema(spec.body, "input", components) } },
              },
            }
          : {}),
        responses,
      };
    }
  }
  return {
    openapi: "3.1.0",
    info,
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        walletKey: { type: "http", scheme: "bearer", description: "A wallet secret key (sgw_…)" },
        adminToken: { type: "http", scheme: "bearer", description: "The ADMIN_TOKEN secret" },
        spendKey: { type: "http", scheme: "bearer", description: "A spend key (sk-sg-…), also read from x-api-key" },
      },
    },
  };
}
