import type { FC } from "hono/jsx";
import { Status, Usd } from "./layout.tsx";

/** A ledger row as the management API answers it (the fields the dashboard shows). */
export interface LedgerWire {
  request_id: string;
  spend_key_id: string;
  status: string;
  model: string;
  priced_model: string;
  endpoint: string;
  model_usage: { input_tokens: number; output_tokens: number; cache_read_tokens: number; reasoning_tokens: number };
  cost: string | null;
  cost_note: string | null;
  usage_known: boolean;
  stream: boolean;
  latency_ms: number;
  /** the run the request named (`x-spendgate-run`), or null */
  run_id?: string | null;
  created_at: string;
}

/**
 * The ledger's rows. With `keyNames` a Key column names each row's key and, for a child key, the key that minted
 * it (`parents`: a key's parent id; a key's parent never changes, so it is the row's parent key); a Run column
 * appears when a row named a run.
 */
export const LedgerTable: FC<{
  rows: LedgerWire[];
  keyNames?: Map<string, string>;
  parents?: Map<string, string | null>;
}> = ({ rows, keyNames, parents }) => {
  const runs = rows.some((r) => r.run_id);
  const name = (id: string) => keyNames?.get(id) ?? id;
  return rows.length === 0 ? (
    <p class="muted">No requests yet.</p>
  ) : (
    <div class="scroll">
      <table class="responsive">
        <thead>
          <tr>
            <th>Time (UTC)</th>
            {keyNames && <th>Key</th>}
            {runs && <th>Run</th>}
            <th>Model</th>
            <th>Status</th>
            <th class="num">Input</th>
            <th class="num">Cached</th>
            <th class="num">Output</th>
            <th class="num">Cost</th>
            <th class="num">Latency</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr>
              <td data-label="Time" class="small">
                {r.created_at.replace("T", " ").slice(0, 19)}
              </td>
              {keyNames && (
                <td data-label="Key">
                  <a class="name" href={`/keys/${r.spend_key_id}`} title={name(r.spend_key_id)}>
                    {name(r.spend_key_id)}
                  </a>
                  {parents?.get(r.spend_key_id) && (
                    <span class="small muted child-of">
                      child of{" "}
                      <a href={`/keys/${parents.get(r.spend_key_id)}`} title={name(parents.get(r.spend_key_id) ?? "")}>
                        {name(parents.get(r.spend_key_id) ?? "")}
                      </a>
                    </span>
                  )}
                </td>
              )}
              {runs && (
                <td data-label="Run" class="wrap small">
                  {r.run_id ? <code>{r.run_id}</code> : <span class="muted">—</span>}
                </td>
              )}
              <td data-label="Model">
                {r.model}
                {r.priced_model !== r.model && <span class="small muted"> ({r.priced_model})</span>}
              </td>
              <td data-label="Status">
                <Status value={r.status} />
                {!r.usage_known && <span class="small muted"> estimated</span>}
              </td>
              <td data-label="Input" class="num">
                {r.model_usage.input_tokens.toLocaleString("en-US")}
              </td>
              <td data-label="Cached" class="num">
                {r.model_usage.cache_read_tokens.toLocaleString("en-US")}
              </td>
              <td data-label="Output" class="num">
                {r.model_usage.output_tokens.toLocaleString("en-US")}
              </td>
              <td data-label="Cost" class="num" title={r.cost_note ?? undefined}>
                <Usd amount={r.cost} />
              </td>
              <td data-label="Latency" class="num">
                {r.latency_ms} ms
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
};
