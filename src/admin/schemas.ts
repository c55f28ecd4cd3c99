import * as z from "zod/mini";
import { UNITS } from "../catalog/units.ts";
import { Name, PathId } from "../lib/api-schemas.ts";
import { parseUsd } from "../lib/money.ts";
import { named } from "../lib/openapi.ts";
import { PROVIDER_IDS } from "../providers/registry.ts";

/** The operator API's request and response shapes: wallets and model price overrides. */

const Providers = z.enum(PROVIDER_IDS as [string, ...string[]]);

const Price = z
  .string()
  .check(z.refine((s) => parseUsd(s) !== null, 'must be a USD decimal string (per 1M tokens), e.g. "0.15"'));

const nullable = <S extends z.ZodMiniType>(s: S) => z.nullable(s);

export const CreateWallet = named("CreateWallet", z.strictObject({ name: Name }));
export const Wallet = named("Wallet", z.object({ wallet_id: z.string(), name: z.string(), created_at: z.string() }));
export const WalletCreated = named(
  "WalletCreated",
  z.extend(Wallet, { secret_key_id: z.string(), secret_key_hint: z.string(), secret_key: z.string() }),
);

export const PutModel = named(
  "PutModel",
  z.strictObject({
    provider: Providers,
    input_price: Price,
    output_price: Price,
    cache_read_price: z.optional(Price),
    cache_write_price: z.optional(Price),
    max_output_tokens: z.optional(z.int().check(z.minimum(0), z.maximum(10_000_000))),
    context_window: z.optional(z.int().check(z.minimum(1), z.maximum(100_000_000))),
    /** every other price rule, by the price database's price keys (`cache_write_1h_mtok`, `web_searches_kcount`…) */
    prices: z.optional(
      z.partialRecord(
        z.enum([...UNITS.keys()] as [string, ...string[]]),
        z.union([
          Price,
          z.strictObject({
            base: Price,
            tiers: z
              .array(z.strictObject({ start: z.int().check(z.minimum(0)), price: Price }))
              .check(z.minLength(1), z.maxLength(10)),
          }),
        ]),
      ),
    ),
    /** OpenAI service-tier multipliers of every price, e.g. `{"priority": "1.75", "flex": "0.5"}` */
    service_tiers: z.optional(z.partialRecord(z.enum(["priority", "flex", "scale"]), Price)),
  }),
);

const PriceRate = z.union([
  z.string(),
  z.object({ base: z.string(), tiers: z.array(z.object({ start: z.number(), price: z.string() })) }),
]);

export const ModelEntryWire = named(
  "ModelEntry",
  z.object({
    id: z.string(),
    provider: z.string(),
    input_price: nullable(z.string()),
    output_price: nullable(z.string()),
    cache_read_price: nullable(z.string()),
    cache_write_price: nullable(z.string()),
    max_output_tokens: nullable(z.number()),
    context_window: nullable(z.number()),
    /** every price in force now, by price key (USD per the unit's count: per 1M tokens, per 1,000 searches…) */
    prices: nullable(z.record(z.string(), PriceRate)),
    service_tiers: nullable(z.record(z.string(), z.string())),
    overridden: z.boolean(),
  }),
);

export const ModelParam = z.object({ model: PathId });
