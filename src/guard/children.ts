import { allowsModel } from "../catalog/scope.ts";
import type { KeyFields, KeyRecord } from "../keys/record.ts";
import type { ErrorCode, RefusalLimit } from "../lib/errors.ts";
import { formatUsd } from "../lib/money.ts";
import { secretMatches } from "./policy.ts";
import type { KeyConfig } from "./types.ts";

/**
 * Child keys as pure functions of a KeyGuard's state (docs/limits-and-metering.md, "Child keys"): what a parent
 * reserves for its children, what a child may be given, what stops a key because of its ancestors, and what an
 * ended child reports back. The KeyGuard stores a `Family` beside its record and applies what these return.
 */

/** A key is at most this many levels below a root key the wallet made. */
export const MAX_DEPTH = 3;
/** The most direct children a delegation may allow a cycle (live, and ended in the cycle: placeRefusal). */
export const MAX_CHILDREN = 20;

/** An ancestor's effective state, as the ancestor last pushed it (its `configVersion` orders the pushes). */
export interface AncestorState {
  version: number;
  paused: boolean;
  revoked: boolean;
  expiresAt: number | null;
  /** its delegation (null: it may not delegate), which bounds every descendant's; absent in states pushed before */
  delegation?: { maxDepth: number; maxChildren: number } | null;
}

/**
 * An ended child's share of its parent's cycle: its spend and holds then, plus what its own children took — set
 * (never added) by the child, newest `seq` wins; `final` once nothing of it is still open.
 */
export interface Report {
  /** the spend period it belongs to (its start, ms; the child's cycle is its parent's) */
  period: number;
  amount: number;
  seq: number;
  final: boolean;
}

export interface Family {
  /** the key's ancestors, parent first (empty for a root key) */
  chain: string[];
  ancestors: Record<string, AncestorState>;
  /** the most delegation this key may ever have (its parent's, one level less); null for a root key */
  cap: { maxDepth: number; maxChildren: number } | null;
  /** live children and the carve each reserves in every cycle of this key */
  live: Record<string, number>;
  /** ended children's reports */
  returned: Record<string, Report>;
  /** this key's own report to its parent once it has ended, and whether the parent acknowledged it */
  report: (Report & { acked: boolean }) | null;
  /** the children have not all acknowledged this key's ancestors' state yet (the alarm retries) */
  push: boolean;
  /** the ancestor whose revocation revoked this key */
  revokedBy: string | null;
  /** when this child key's time ended (its expiry, or `ancestor`'s): it was revoked as of then, for good */
  expiredAt?: { at: number; ancestor: string | null } | null;
  /** children reserved and not yet known to be created, by when (a Worker lost mid-mint: see `MINT_TIMEOUT_MS`) */
  minting?: Record<string, number>;
}

/**
 * How long a reservation may wait for its child's creation before the parent's alarm asks the child's guard: a
 * guard still without a record is then sealed (a late create fails) and the carve goes back.
 */
export const MINT_TIMEOUT_MS = 60_000;

export const rootFamily = (): Family => ({
  chain: [],
  ancestors: {},
  cap: null,
  live: {},
  returned: {},
  report: null,
  push: false,
  revokedBy: null,
});

/** What this key's children take of its spend period `period`: live carves, and ended children's reports. */
export function carvedIn(f: Family, period: number): number {
  let total = 0;
  for (const carve of Object.values(f.live)) total += carve;
  for (const r of Object.values(f.returned)) if (r.period === period) total += r.amount;
  return total;
}

/** The key's expiry, or an ancestor's when sooner: a key never outlives its ancestors. */
export function effectiveExpiry(cfg: Pick<KeyConfig, "expiresAt">, f: Family): number | null {
  let at = cfg.expiresAt;
  for (const a of Object.values(f.ancestors)) {
    if (a.expiresAt !== null && (at === null || a.expiresAt < at)) at = a.expiresAt;
  }
  return at;
}

/**
 * When a child key's time ended, and whose expiry it was (null: its own), once its effective expiry has passed;
 * null for a root key (its expiry may still move later) or one whose time has not ended.
 */
export function expiryEnded(cfg: KeyConfig, f: Family, now: number): { at: number; ancestor: string | null } | null {
  const at = effectiveExpiry(cfg, f);
  if (!f.chain.length || at === null || at > now) return null;
  const ancestor = at === cfg.expiresAt ? null : (f.chain.find((id) => f.ancestors[id]?.expiresAt === at) ?? null);
  return { at, ancestor };
}

/** A key that will never be admitted again: revoked (itself or with an ancestor), or expired (or an ancestor). */
export function ended(cfg: KeyConfig, f: Family, now: number): boolean {
  const at = effectiveExpiry(cfg, f);
  return cfg.revoked || Object.values(f.ancestors).some((a) => a.revoked) || (at !== null && at <= now);
}

export interface Stop {
  code: ErrorCode;
  limit: RefusalLimit;
  message: string;
}

/**
 * Why a key with the right secret is refused because of an ancestor (revoked, expired, paused), or null. A caller
 * without the right secret learns nothing here: admission answers it as any bad key.
 */
export function stoppedByAncestor(cfg: KeyConfig | null, f: Family, secretHash: string, now: number): Stop | null {
  // The secret as admission reads it: a rotated-out one still in its grace period counts.
  if (!cfg || !f.chain.length || !secretMatches(cfg, secretHash, now)) return null;
  if (f.expiredAt) {
    const at = new Date(f.expiredAt.at).toISOString();
    const whose = f.expiredAt.ancestor ? `'s ancestor key ${f.expiredAt.ancestor}` : "";
    return { code: "key_expired", limit: "expiry", message: `This spend key${whose} expired at ${at}.` };
  }
  const find = (test: (a: AncestorState) => boolean) => f.chain.find((id) => f.ancestors[id] && test(f.ancestors[id]));
  const revoked = f.revokedBy ?? find((a) => a.revoked);
  if (revoked) {
    const message = `This spend key was revoked with its ancestor key ${revoked}.`;
    return { code: "key_revoked", limit: "revoked", message };
  }
  if (cfg.revoked) return null;
  const expired = find((a) => a.expiresAt !== null && a.expiresAt <= now && (cfg.expiresAt ?? Infinity) > now);
  if (expired) {
    const at = new Date(f.ancestors[expired]?.expiresAt ?? now).toISOString();
    return {
      code: "key_expired",
      limit: "expiry",
      message: `This spend key's ancestor key ${expired} expired at ${at}.`,
    };
  }
  if (cfg.expiresAt !== null && cfg.expiresAt <= now) return null;
  const paused = find((a) => a.paused);
  if (paused) {
    return { code: "key_paused", limit: "paused", message: `This spend key's ancestor key ${paused} is paused.` };
  }
  return null;
}

/** The state a key pushes to its children: its ancestors' and its own. */
export function ancestorsForChildren(record: KeyRecord, f: Family): Record<string, AncestorState> {
  const own: AncestorState = {
    version: record.configVersion,
    paused: record.status === "paused",
    revoked: record.revokedAt !== null,
    expiresAt: record.expiresAt,
    delegation:
      record.delegationMaxDepth === null || record.delegationMaxChildren === null
        ? null
        : { maxDepth: record.delegationMaxDepth, maxChildren: record.delegationMaxChildren },
  };
  return { ...f.ancestors, [record.id]: own };
}

/**
 * Pushed ancestor states merged in: each ancestor's newest version wins. Null when nothing changed. A key not
 * created yet (its chain unknown) keeps every state pushed to it, for its creation to merge.
 */
export function mergeAncestors(f: Family, pushed: Record<string, AncestorState>, created = true): Family | null {
  let changed = false;
  const ancestors = { ...f.ancestors };
  for (const [id, state] of Object.entries(pushed)) {
    const had = ancestors[id];
    if ((created && !f.chain.includes(id)) || (had && had.version >= state.version)) continue;
    ancestors[id] = state;
    changed = true;
  }
  return changed ? { ...f, ancestors } : null;
}

/** A refusal of a mint or of a management change, with its HTTP status. */
export interface FamilyRefusal {
  status: 400 | 401 | 403 | 409;
  code: ErrorCode;
  message: string;
  param?: string;
  /** what refused a mint (its `x-spendgate-limit`) */
  limit?: RefusalLimit;
}

/** What a parent's KeyGuard is asked to mint: the body's fields as record columns, the carve apart. */
export interface MintRequest {
  childId: string;
  fields: KeyFields;
  /** spend_limit.amount (nanos), absent when the body sent none */
  carveNanos: number | null;
  /** spend_limit.cycle as the body sent it, when it did */
  cycle: string | null;
}

const refuse = (
  status: FamilyRefusal["status"],
  code: ErrorCode,
  limit: RefusalLimit,
  message: string,
  param?: string,
) => ({
  ok: false as const,
  refusal: { status, code, limit, message, ...(param ? { param } : {}) },
});
/** A field looser than the parent's names the parent's bound; a carve and a delegation name their own. */
const LOOSER_LIMIT: Record<string, RefusalLimit> = { spend_limit: "carve", delegation: "delegation" };
const looser = (param: string, message: string) =>
  refuse(400, "invalid_request", LOOSER_LIMIT[param] ?? "parent", `${param}: ${message}`, param);
const doesNotFit = (message: string) => refuse(409, "carve_exceeded", "carve", message);

/**
 * The child's fields, no looser than its parent's: what the body leaves out (or sets to null) it inherits; what it
 * sets must be within the parent's. Then the bounds (delegation, depth, live children) and the carve. Null fields
 * of the parent leave the child free.
 */
export function childFields(
  parent: KeyRecord,
  parentCfg: KeyConfig,
  f: Family,
  req: MintRequest,
  committedNanos: number,
  period: number,
):
  | { ok: true; fields: KeyFields & { spendLimitNanos: number | null; spendLimitCycle: string | null }; family: Family }
  | { ok: false; refusal: FamilyRefusal } {
  const b = req.fields;
  if (parent.delegationMaxDepth === null || parent.delegationMaxChildren === null) {
    return refuse(403, "forbidden", "delegation", "This spend key may not mint child keys: its delegation is null.");
  }
  const reach = delegationReach(parent.delegationMaxDepth, parent.delegationMaxChildren, f);
  if ("refusal" in reach) return reach;
  const placed = placeRefusal(f, reach.maxChildren, period);
  if (placed) return placed;
  const scopes = childScopes(parent, b);
  if ("refusal" in scopes) return scopes;
  const limits = childLimits(parent, parentCfg, b);
  if ("refusal" in limits) return limits;
  const cap = { maxDepth: reach.maxDepth - 1, maxChildren: reach.maxChildren };
  const refused = delegationRefusal(b, cap) ?? carveRefusal(parentCfg, req, committedNanos);
  if (refused) return refused;
  const family: Family = { ...rootFamily(), chain: [parent.id, ...f.chain], cap };
  const { rpm, burst, count, countCycle, tokens, tokenCycle } = limits;
  const fields = {
    ...b,
    requestShape: parent.requestShape,
    allowedModels: scopes.models ? [...new Set(scopes.models)] : null,
    allowedProviders: scopes.providers,
    rateLimitRpm: rpm,
    rateLimitBurst: rpm === null ? null : (burst ?? rpm),
    requestLimitCount: count,
    requestLimitCycle: count === null ? null : countCycle,
    expiresAt: limits.expiresAt,
    tokenLimitCount: tokens,
    tokenLimitCycle: tokens === null ? null : tokenCycle,
    tokensPerMinute: limits.tpm,
    runSpendLimitNanos: limits.runSpend,
    runRequestLimit: limits.runRequests,
    spendLimitNanos: req.carveNanos,
    spendLimitCycle: req.carveNanos === null ? null : (parentCfg.spendLimit?.cycle ?? req.cycle),
    delegationMaxDepth: b.delegationMaxDepth ?? null,
    delegationMaxChildren: b.delegationMaxDepth == null ? null : (b.delegationMaxChildren ?? null),
  };
  return { ok: true, fields, family };
}

/**
 * The key's delegation as its ancestors' (as last pushed) still allow it: an ancestor `i` levels up (its parent
 * is 1) lets it reach `max_depth − i` levels below it, and no more than its `max_children` a cycle. So a delegation
 * made null or smaller reaches every descendant, not only the children minted after it.
 */
function delegationReach(maxDepth: number, maxChildren: number, f: Family) {
  let reach = { maxDepth, maxChildren };
  for (const [i, id] of f.chain.entries()) {
    const d = f.ancestors[id]?.delegation;
    if (d === undefined) continue;
    if (d === null || d.maxDepth - (i + 1) < 1) {
      const why = d === null ? "is null" : `reaches ${d.maxDepth} levels below it`;
      const message = `This spend key may not mint child keys: its ancestor key ${id}'s delegation ${why}.`;
      return refuse(403, "forbidden", "delegation", message);
    }
    reach = {
      maxDepth: Math.min(reach.maxDepth, d.maxDepth - (i + 1)),
      maxChildren: Math.min(reach.maxChildren, d.maxChildren),
    };
  }
  return reach;
}

/**
 * Where the child would stand: no deeper than MAX_DEPTH, and a place among the children minted in the parent's
 * current spend period — live ones and those ended in it (their reports are kept for the period). So an agent
 * minting short-lived children mints at most `maxChildren` a cycle, and the reports the parent keeps stay bounded
 * (one period's, and for `total` or no spend limit — one period for ever — at most `maxChildren` in all).
 */
function placeRefusal(f: Family, maxChildren: number, period: number) {
  const depth = f.chain.length + 1;
  if (depth > MAX_DEPTH) return doesNotFit(`A child key here would be ${depth} levels below its root (at most 3).`);
  const live = Object.keys(f.live).length;
  const ended = Object.entries(f.returned).filter(([id, r]) => r.period === period && !(id in f.live)).length;
  if (live + ended < maxChildren) return null;
  return doesNotFit(
    `This spend key has ${live} live child keys and ${ended} ended this cycle: ${live + ended} child keys this ` +
      `cycle (its delegation allows at most ${maxChildren} a cycle; the place of an ended one frees with the next).`,
  );
}

/** The child's request shape is its parent's, its models and providers among the parent's: what it may call. */
function childScopes(parent: KeyRecord, b: KeyFields) {
  if (b.requestShape !== undefined && b.requestShape !== parent.requestShape) {
    return looser("request_shape", `must be the parent's ('${parent.requestShape}').`);
  }
  const models = b.allowedModels ?? parent.allowedModels;
  const outside = parent.allowedModels ? models?.find((m) => !allowsModel(parent.allowedModels, m)) : undefined;
  if (outside !== undefined || (parent.allowedModels && !models)) {
    return looser("allowed_models", `'${outside}' is not among the parent's allowed models.`);
  }
  const providers = b.allowedProviders ?? parent.allowedProviders;
  const outsider = parent.allowedProviders ? providers?.find((p) => !parent.allowedProviders?.includes(p)) : undefined;
  if (outsider !== undefined) return looser("allowed_providers", `'${outsider}' is not among the parent's providers.`);
  return { models, providers };
}

/**
 * The child's rate, request, token and run limits and its expiry, each at most its parent's: what the child could
 * otherwise do that its parent cannot. Token limits and run budgets are not carved (like the request limit).
 */
function childLimits(parent: KeyRecord, parentCfg: KeyConfig, b: KeyFields) {
  const rpm = b.rateLimitRpm ?? parent.rateLimitRpm;
  const burst = b.rateLimitRpm != null ? (b.rateLimitBurst ?? b.rateLimitRpm) : parent.rateLimitBurst;
  const pr = parentCfg.rateLimit;
  if (pr && rpm !== null && (rpm > pr.rpm || (burst ?? rpm) > pr.burst)) {
    return looser("rate_limit", `at most the parent's ${pr.rpm} rpm with a burst of ${pr.burst}.`);
  }
  const count = b.requestLimitCount ?? parent.requestLimitCount;
  const countCycle = b.requestLimitCount != null ? b.requestLimitCycle : parent.requestLimitCycle;
  const rl = parentCfg.requestLimit;
  if (rl && (count === null || count > rl.count || countCycle !== rl.cycle)) {
    return looser("request_limit", `at most the parent's ${rl.count} requests per ${rl.cycle} cycle, same cycle.`);
  }
  const tokens = b.tokenLimitCount ?? parent.tokenLimitCount;
  const tokenCycle = b.tokenLimitCount != null ? b.tokenLimitCycle : parent.tokenLimitCycle;
  const tl = parentCfg.tokenLimit;
  if (tl && (tokens === null || tokens > tl.count || tokenCycle !== tl.cycle)) {
    return looser("token_limit", `at most the parent's ${tl.count} tokens per ${tl.cycle} cycle, same cycle.`);
  }
  const tpm = b.tokensPerMinute ?? parent.tokensPerMinute;
  if (parentCfg.tokensPerMinute !== null && (tpm === null || tpm > parentCfg.tokensPerMinute)) {
    return looser("tokens_per_minute", `at most the parent's ${parentCfg.tokensPerMinute}.`);
  }
  const runSpend = b.runSpendLimitNanos ?? parent.runSpendLimitNanos;
  const runRequests = b.runRequestLimit ?? parent.runRequestLimit;
  const within = (mine: number | null, theirs: number | null) => theirs === null || (mine !== null && mine <= theirs);
  if (!within(runSpend, parent.runSpendLimitNanos) || !within(runRequests, parent.runRequestLimit)) {
    return looser("run_limit", "each of spend and requests at most the parent's.");
  }
  const expiresAt = b.expiresAt ?? parent.expiresAt;
  if (parent.expiresAt !== null && expiresAt !== null && expiresAt > parent.expiresAt) {
    return looser("expires_at", `at most the parent's expiry, ${new Date(parent.expiresAt).toISOString()}.`);
  }
  return { rpm, burst, count, countCycle, tokens, tokenCycle, tpm, runSpend, runRequests, expiresAt };
}

/** The carve: of the parent's cycle, required when the parent has a spend limit, and within what it has left. */
function carveRefusal(parentCfg: KeyConfig, req: MintRequest, committedNanos: number) {
  const spend = parentCfg.spendLimit;
  if (spend && req.cycle !== null && req.cycle !== spend.cycle) {
    return looser("spend_limit", `cycle must be the parent's ('${spend.cycle}'): a carve is of the parent's cycle.`);
  }
  if (spend && req.carveNanos === null) {
    return looser("spend_limit", "required: its amount is the child's carve of this key's spend limit.");
  }
  if (!spend && req.carveNanos !== null && req.cycle === null) {
    return looser("spend_limit", "cycle is required: this key has no spend limit whose cycle a child takes.");
  }
  if (spend && req.carveNanos !== null && committedNanos + req.carveNanos > spend.nanos) {
    const left = Math.max(0, spend.nanos - committedNanos);
    return doesNotFit(
      `The carve ($${formatUsd(req.carveNanos)}) does not fit this key's spend limit: $${formatUsd(left)} of ` +
        `$${formatUsd(spend.nanos)} per ${spend.cycle} cycle is left after its spend, holds and children's carves.`,
    );
  }
  return null;
}

/** A delegation beyond what the key's parent allows it (null cap: a root key, bounded by the schema alone). */
function delegationRefusal(b: KeyFields, cap: Family["cap"]) {
  if (!cap || b.delegationMaxDepth == null) return null;
  if (cap.maxDepth < 1) return looser("delegation", "must be null: the parent's delegation reaches no further.");
  if (b.delegationMaxDepth > cap.maxDepth || (b.delegationMaxChildren ?? 0) > cap.maxChildren) {
    return looser("delegation", `at most { max_depth: ${cap.maxDepth}, max_children: ${cap.maxChildren} }.`);
  }
  return null;
}

/**
 * A wallet's change a key's family forbids (409): a child's spend limit (its carve) or delegation beyond its cap;
 * a parent's cycle while it has live children, or its limit below their carves. Null when it may apply.
 */
export function familyConflict(record: KeyRecord, f: Family, fields: KeyFields): FamilyRefusal | null {
  const conflict = (message: string, param: string) => ({
    status: 409 as const,
    code: "conflict" as const,
    message,
    param,
  });
  const changes = (k: "spendLimitNanos" | "spendLimitCycle") => fields[k] !== undefined && fields[k] !== record[k];
  if (record.parentKeyId && (changes("spendLimitNanos") || changes("spendLimitCycle"))) {
    return conflict(
      "A child key's spend limit was fixed when it was minted (under a parent with a spend limit, its carve of its " +
        "parent's cycle): it cannot change. Revoke it and mint another.",
      "spend_limit",
    );
  }
  const d = delegationRefusal(fields, f.cap);
  if (d) return { ...d.refusal, status: 409, code: "conflict" };
  const carves = Object.values(f.live).reduce((a, b) => a + b, 0);
  const live = Object.keys(f.live).length;
  if (live && changes("spendLimitCycle")) {
    return conflict(
      `This key has ${live} live child keys whose carves are of its '${record.spendLimitCycle}' cycle: its ` +
        "spend limit's cycle cannot change (nor the limit be added or removed) while they live.",
      "spend_limit",
    );
  }
  if (live && fields.spendLimitNanos != null && fields.spendLimitNanos < carves) {
    return conflict(
      `This key's live child keys hold carves of $${formatUsd(carves)}: its spend limit cannot go below that.`,
      "spend_limit",
    );
  }
  return null;
}

/**
 * An ended key's report to its parent for the spend period it ended in: its spend and open holds then, plus what
 * its children take of it; final once no hold, no live child and no unfinished child report is left. After that
 * period is over the last report only becomes final (its cycle's spend can no longer change the parent's).
 */
export function reportOf(
  f: Family,
  period: number,
  spendNanos: number,
  held: { count: number; nanos: number },
): Report & { acked: boolean } {
  const prev = f.report;
  if (prev && prev.period !== period) {
    return prev.final ? prev : { ...prev, seq: prev.seq + 1, final: true, acked: false };
  }
  const amount = spendNanos + held.nanos + carvedIn(f, period);
  const final =
    held.count === 0 &&
    Object.keys(f.live).length === 0 &&
    Object.values(f.returned).every((r) => r.period !== period || r.final);
  if (prev && prev.amount === amount && prev.final === final) return prev;
  return { period, amount, final, seq: (prev?.seq ?? 0) + 1, acked: false };
}

/** A child's report applied by its parent (newest `seq` wins): the child's carve gives way to its report. */
export function applyReport(f: Family, childId: string, r: Report, period: number): Family | null {
  const had = f.returned[childId];
  if (had && had.seq >= r.seq) return null;
  const { [childId]: _, ...live } = f.live;
  const returned: Record<string, Report> = { [childId]: r };
  // Reports of periods past are no longer counted anywhere: forget them once final.
  for (const [id, old] of Object.entries(f.returned))
    if (id !== childId && (old.period === period || !old.final)) returned[id] = old;
  return { ...f, live, returned };
}
