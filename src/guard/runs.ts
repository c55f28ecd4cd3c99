import type { RunSnapshot } from "../keys/view.ts";
import type { KeyConfig } from "./types.ts";

/**
 * Runs: each distinct run id a request names (`x-spendgate-run`) gets its own exact budget inside its key
 * (`run_limit`), kept in the KeyGuard's SQLite beside the holds. A run lives from its first request until it has
 * been idle for `RUN_IDLE_MS` (no request admitted, no hold open); then it has ended, and the same id starts a new
 * run with a fresh budget. A key keeps at most `MAX_RUNS_PER_KEY` live runs. Callers wrap writes in
 * `transactionSync`, in the RPC that read the state (no await between).
 */

/** How long a run lasts after its last request once nothing of it is in flight. */
export const RUN_IDLE_MS = 24 * 3_600_000;
/** Live runs one key keeps at most: a new run beyond them is refused until the oldest idle one ends. */
export const MAX_RUNS_PER_KEY = 1_000;
/** Ended runs the alarm deletes per wake: bounded work per call (it wakes again at once while more are due). */
const DROP_BATCH = 200;
/** The shortest `retry-after` a full key answers (the oldest run may be about to end). */
const MIN_RETRY_MS = 1_000;

/** One run's stored state. */
export interface RunState extends RunSnapshot {
  /** its open holds */
  holds: number;
  lastUsedAt: number;
}

/** What admission knows of a request's run. */
export interface AdmitRun {
  state: RunState;
  /** set when the run is new and the key has no place for it: ms until the oldest idle run ends */
  fullForMs?: number;
  /** an ended run whose place the new run takes */
  replaces?: string;
  /** runs stored now, when the run is new (the bound's figure, for a refusal's details) */
  live?: number;
}

interface RunRow extends Record<string, SqlStorageValue> {
  run_id: string;
  spend: number;
  requests: number;
  held: number;
  holds: number;
  last_used: number;
}

const fresh = (id: string, now: number): RunState => ({
  id,
  spendNanos: 0,
  requests: 0,
  heldNanos: 0,
  holds: 0,
  lastUsedAt: now,
});

const ended = (r: RunRow, now: number) => r.holds === 0 && r.last_used + RUN_IDLE_MS <= now;

/** The run's spend limit and what is left of it after its spend and open holds, when it has one. */
export function runSpendRoom(cfg: KeyConfig, run: AdmitRun | null): { limit: number; room: number } | null {
  const limit = cfg.runLimit?.nanos ?? null;
  if (!run || limit === null) return null;
  return { limit, room: limit - run.state.spendNanos - run.state.heldNanos };
}

export class GuardRuns {
  constructor(private readonly sql: SqlStorage) {}

  ensureSchema(): void {
    this.sql.exec(`CREATE TABLE IF NOT EXISTS runs (
      run_id TEXT PRIMARY KEY, spend INTEGER NOT NULL, requests INTEGER NOT NULL, held INTEGER NOT NULL,
      holds INTEGER NOT NULL, last_used INTEGER NOT NULL)`);
    this.sql.exec("CREATE INDEX IF NOT EXISTS runs_last_used ON runs (last_used)");
  }

  private row(id: string): RunRow | undefined {
    return this.sql.exec<RunRow>("SELECT * FROM runs WHERE run_id = ?", id).toArray()[0];
  }

  /** The run's live figures; zeros for a run never seen or ended. */
  read(id: string, now: number, r = this.row(id)): RunState {
    if (!r || ended(r, now)) return fresh(id, now);
    return {
      id,
      spendNanos: r.spend,
      requests: r.requests,
      heldNanos: r.held,
      holds: r.holds,
      lastUsedAt: r.last_used,
    };
  }

  /**
   * The run as admission sees it: its live state, or a new run's zeros and whether the key has a place for it —
   * below the bound, or in the place of the longest-idle run that has ended (one row looked at, not a sweep).
   */
  forAdmission(id: string, now: number): AdmitRun {
    const r = this.row(id);
    if (r) return { state: this.read(id, now, r) };
    // Only a new run needs the count (at most MAX_RUNS_PER_KEY rows).
    const live = this.count();
    if (live < MAX_RUNS_PER_KEY) return { state: fresh(id, now), live };
    const oldest = this.sql.exec<RunRow>("SELECT * FROM runs WHERE holds = 0 ORDER BY last_used LIMIT 1").toArray()[0];
    if (oldest && ended(oldest, now)) return { state: fresh(id, now), replaces: oldest.run_id, live };
    const first = this.sql.exec<{ at: number }>("SELECT min(last_used) AS at FROM runs").one().at;
    return { state: fresh(id, now), live, fullForMs: Math.max(MIN_RETRY_MS, first + RUN_IDLE_MS - now) };
  }

  /** An admitted request of the run: counted, its hold added, its idle clock restarted. */
  admit(run: AdmitRun, hold: number, now: number): void {
    if (run.replaces !== undefined) this.sql.exec("DELETE FROM runs WHERE run_id = ?", run.replaces);
    const s = run.state;
    this.sql.exec(
      "INSERT INTO runs (run_id, spend, requests, held, holds, last_used) VALUES (?, ?, ?, ?, ?, ?) " +
        "ON CONFLICT (run_id) DO UPDATE SET spend = excluded.spend, requests = excluded.requests, " +
        "held = excluded.held, holds = excluded.holds, last_used = excluded.last_used",
      s.id,
      s.spendNanos,
      s.requests + 1,
      s.heldNanos + hold,
      s.holds + 1,
      now,
    );
  }

  /** A hold of the run closed: its amount released and its cost charged. */
  close(id: string, hold: number, costNanos: number): void {
    this.sql.exec(
      "UPDATE runs SET held = max(0, held - ?), holds = max(0, holds - 1), spend = spend + ? WHERE run_id = ?",
      hold,
      costNanos,
      id,
    );
  }

  /** Deletes up to a batch of ended runs, longest idle first. */
  dropEnded(now: number): void {
    this.sql.exec(
      "DELETE FROM runs WHERE run_id IN (SELECT run_id FROM runs WHERE holds = 0 AND last_used <= ? " +
        "ORDER BY last_used LIMIT ?)",
      now - RUN_IDLE_MS,
      DROP_BATCH,
    );
  }

  /** When the next idle run ends (for the alarm); null when every run has a request in flight, or none exists. */
  nextEnd(): number | null {
    const at = this.sql.exec<{ at: number | null }>("SELECT min(last_used) AS at FROM runs WHERE holds = 0").one().at;
    return at === null ? null : at + RUN_IDLE_MS;
  }

  /** Runs stored (tests and `KeyGuard.inspect`). */
  count(): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM runs").one().n;
  }
}
