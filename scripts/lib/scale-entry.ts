/**
 * The Worker that `npm run bench:scale` serves: a checkout's own Worker (its default export and its KeyGuard class)
 * with the D1 bindings (`DB`, and any other) of every handler's env — fetch, queue, scheduled, and the Durable
 * Object's — wrapped to count the D1 write transactions and the rows they write. Bench only: none of this is in the
 * deployed Worker.
 *
 * One write transaction: a `batch()` holding at least one writing statement, or a lone writing statement (INSERT,
 * UPDATE, DELETE or REPLACE, also after a WITH) run by `run`, `all`, `first` or `raw`. Rows: the sum of the results'
 * `meta.rows_written` (D1 counts every index entry written, and what the statement's triggers write). A failed
 * batch or statement counts nothing: D1 rolled it back.
 *
 * The Durable Object and the Worker's handlers share one isolate under workerd, so one module-level tally sees
 * both. `GET /__bench/d1` answers the running totals with this isolate's id and a KeyGuard's, so that the bench can
 * check that they match (and refuse to report counts if a runtime ever split them).
 *
 * `scripts/bench-scale.ts` bundles this module behind a generated entry that imports the checkout's `src/index.ts`.
 * It uses only what every Worker has, so it type-checks under the Node config (no Worker types there).
 */

/** The parts of D1's binding the wrapper touches (structural: the Node config has no Worker types). */
interface D1Meta {
  rows_written?: number;
  changes?: number;
}
interface D1ResultLike {
  results?: Record<string, unknown>[];
  meta?: D1Meta;
}
interface Statement {
  bind(...values: unknown[]): Statement;
  run(): Promise<D1ResultLike>;
  all(): Promise<D1ResultLike>;
  first(column?: string): Promise<unknown>;
  raw(options?: { columnNames?: boolean }): Promise<unknown[]>;
}
interface Database {
  prepare(sql: string): Statement;
  batch(statements: Statement[]): Promise<D1ResultLike[]>;
  exec(sql: string): Promise<unknown>;
  withSession(constraint?: string): Database;
  dump(): Promise<ArrayBuffer>;
}
interface GuardStub {
  benchIsolate(): Promise<string>;
}
interface Env {
  DB: Database;
  KEY_GUARD: { idFromName(name: string): unknown; get(id: unknown): GuardStub };
}
interface Handlers {
  fetch?(request: Request, env: Env, ctx: unknown): Response | Promise<Response>;
  queue?(batch: unknown, env: Env, ctx: unknown): Promise<void>;
  scheduled?(controller: unknown, env: Env, ctx: unknown): Promise<void>;
}
/** A mixin's base takes `any[]` (TypeScript's rule for mixins). */
type GuardClass = new (...args: any[]) => object;

/** Where a write came from: the handler whose env carried the database it went through. */
export type Source = "fetch" | "queue" | "scheduled" | "guard";

export interface D1Counts {
  /** write transactions (batches with a write, and lone writing statements) */
  tx: number;
  /** `meta.rows_written` summed over the write transactions */
  rows: number;
  /** writing statements, in batches or alone */
  statements: number;
  /** write transactions whose rows D1 does not report (`exec`, `raw({ columnNames: true })`) */
  rowsUnknown: number;
  /** write transactions by source */
  txBy: Record<Source, number>;
  /** rows written by the statements writing each table (with what their triggers write) */
  rowsByTable: Record<string, number>;
  /** rows inserted into `requests` (`meta.changes` of those inserts: without what triggers write) */
  ledgerInserted: number;
  /** cron runs */
  scheduled: number;
}

export interface D1Report {
  counts: D1Counts;
  /** this isolate's id, and the id a KeyGuard reports for its own */
  isolate: string;
  guardIsolate: string;
}

const counts: D1Counts = {
  tx: 0,
  rows: 0,
  statements: 0,
  rowsUnknown: 0,
  txBy: { fetch: 0, queue: 0, scheduled: 0, guard: 0 },
  rowsByTable: {},
  ledgerInserted: 0,
  scheduled: 0,
};

/** This isolate's id, drawn on first use (a Worker may not draw random values while it starts). */
let isolate = "";
const isolateId = () => {
  isolate ||= crypto.randomUUID();
  return isolate;
};

interface Write {
  table: string;
  insert: boolean;
}

const WRITE =
  /^(?:with\b[\s\S]*?)?\b(insert|replace|update|delete)\b(?:\s+or\s+\w+)?(?:\s+into|\s+from)?\s+[`"[]?(\w+)/i;

/**
 * The table a statement writes, or null when it only reads. Leading comments are skipped and a WITH may precede
 * the write; names quoted as drizzle (`"t"`) and the migrations (`` `t` ``) quote them.
 */
export function writeOf(sql: string): Write | null {
  const s = sql.replace(/^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/, "");
  const m = WRITE.exec(s);
  if (!m) return null;
  const verb = (m[1] ?? "").toLowerCase();
  return { table: (m[2] ?? "?").toLowerCase(), insert: verb === "insert" || verb === "replace" };
}

function tally(source: Source, parts: { write: Write | null; meta: D1Meta | undefined }[], rowsKnown = true) {
  if (!parts.some((p) => p.write)) return;
  counts.tx++;
  counts.txBy[source]++;
  if (!rowsKnown) counts.rowsUnknown++;
  for (const { write, meta } of parts) {
    const rows = meta?.rows_written ?? 0;
    counts.rows += rows;
    if (!write) continue;
    counts.statements++;
    counts.rowsByTable[write.table] = (counts.rowsByTable[write.table] ?? 0) + rows;
    if (write.table === "requests" && write.insert) counts.ledgerInserted += meta?.changes ?? 0;
  }
}

/**
 * A prepared statement that remembers its SQL's write and counts a lone run. `first` and `raw` of a writing
 * statement run as `all` (which carries the meta they drop) and are answered in their own shapes; reads pass
 * through untouched.
 */
class CountingStatement implements Statement {
  constructor(
    readonly real: Statement,
    readonly write: Write | null,
    private readonly source: Source,
  ) {}

  bind(...values: unknown[]): Statement {
    return new CountingStatement(this.real.bind(...values), this.write, this.source);
  }

  async run() {
    const r = await this.real.run();
    tally(this.source, [{ write: this.write, meta: r.meta }]);
    return r;
  }

  async all() {
    const r = await this.real.all();
    tally(this.source, [{ write: this.write, meta: r.meta }]);
    return r;
  }

  async first(column?: string) {
    if (!this.write) return this.real.first(column);
    const r = await this.real.all();
    tally(this.source, [{ write: this.write, meta: r.meta }]);
    const row = r.results?.[0];
    if (!row) return null;
    if (column === undefined) return row;
    // As D1's own `first(column)` does for a column the result lacks.
    if (row[column] === undefined) throw new Error(`D1_COLUMN_NOTFOUND: Column not found (${column})`);
    return row[column];
  }

  async raw(options?: { columnNames?: boolean }) {
    if (!this.write) return this.real.raw(options);
    if (options?.columnNames) {
      // The column names of an empty result exist only in raw's own answer: run it, rows unknown.
      const rows = await this.real.raw(options);
      tally(this.source, [{ write: this.write, meta: undefined }], false);
      return rows;
    }
    const r = await this.real.all();
    tally(this.source, [{ write: this.write, meta: r.meta }]);
    return (r.results ?? []).map((row) => Object.values(row));
  }
}

class CountingDatabase implements Database {
  constructor(
    private readonly real: Database,
    private readonly source: Source,
  ) {}

  prepare(sql: string): Statement {
    return new CountingStatement(this.real.prepare(sql), writeOf(sql), this.source);
  }

  async batch(statements: Statement[]) {
    // D1 reads its own statements' internals: hand it the real ones.
    const results = await this.real.batch(statements.map((s) => (s instanceof CountingStatement ? s.real : s)));
    tally(
      this.source,
      statements.map((s, i) => ({ write: s instanceof CountingStatement ? s.write : null, meta: results[i]?.meta })),
    );
    return results;
  }

  async exec(sql: string) {
    const r = await this.real.exec(sql);
    tally(this.source, [{ write: writeOf(sql), meta: undefined }], false);
    return r;
  }

  withSession(constraint?: string): Database {
    return new CountingDatabase(this.real.withSession(constraint), this.source);
  }

  dump() {
    return this.real.dump();
  }
}

/** A D1 binding, told by its shape (a build may spread wallets over several databases). */
const isD1 = (v: unknown): v is Database =>
  typeof v === "object" &&
  v !== null &&
  ["prepare", "batch", "exec"].every((m) => typeof (v as Record<string, unknown>)[m] === "function");

/** Each env once per source (the runtime hands the same env object to every call). */
const wrapped = new Map<Source, WeakMap<object, Env>>();

/** `env` with every D1 binding in it counted (`DB`, and any other a build declares). */
function counted(env: Env, source: Source): Env {
  let bySource = wrapped.get(source);
  if (!bySource) wrapped.set(source, (bySource = new WeakMap()));
  let out = bySource.get(env);
  if (!out) {
    const databases = new Map<string | symbol, Database>();
    out = new Proxy(env, {
      get(target, name) {
        const value: unknown = Reflect.get(target, name);
        if (!isD1(value)) return value;
        let db = databases.get(name);
        if (!db) databases.set(name, (db = new CountingDatabase(value, source)));
        return db;
      },
    });
    bySource.set(env, out);
  }
  return out;
}

/** The instrumented Worker: what the generated entry exports as its default and as `KeyGuard`. */
export function instrument<G extends GuardClass>(worker: Handlers, Guard: G) {
  const handlers: Handlers = {
    async fetch(request, env, ctx) {
      // No URL parse on every request of the Worker under test: the bench asks for exactly this path.
      if (request.url.endsWith("/__bench/d1")) {
        const guard = env.KEY_GUARD.get(env.KEY_GUARD.idFromName("__bench_isolate_probe"));
        const report: D1Report = { counts, isolate: isolateId(), guardIsolate: await guard.benchIsolate() };
        return Response.json(report);
      }
      if (!worker.fetch) return new Response("no fetch handler", { status: 500 });
      return worker.fetch(request, counted(env, "fetch"), ctx);
    },
  };
  const { queue, scheduled } = worker;
  if (queue) handlers.queue = (batch, env, ctx) => queue.call(worker, batch, counted(env, "queue"), ctx);
  if (scheduled) {
    handlers.scheduled = (controller, env, ctx) => {
      counts.scheduled++;
      return scheduled.call(worker, controller, counted(env, "scheduled"), ctx);
    };
  }
  // The subclass only swaps the env its base sees; every RPC method is the base's.
  class Counted extends Guard {
    constructor(...args: any[]) {
      super(args[0], counted(args[1] as Env, "guard"));
    }
    benchIsolate(): string {
      return isolateId();
    }
  }
  return { handlers, KeyGuard: Counted as unknown as G };
}
