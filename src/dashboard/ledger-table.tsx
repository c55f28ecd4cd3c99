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
  created_at: string;
}

export const LedgerTable: FC<{ rows: LedgerWire[]; keyNames?: Map<string, string> }> = ({ rows, keyNames }) =>
  rows.length === 0 ? (
    <p class="muted">No requests yet.</p>
  ) : (
    <div class="scroll">
      <table class="responsive">
        <thead>
          <tr>
            <th>Time (UTC)</th>
            {keyNames && <th>Key</th>}
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
                  <a
                    class="name"
                    href={`/keys/${r.spend_key_id}`}
                    title={keyNames.get(r.spend_key_id) ?? r.spend_key_id}
                  >
                    {keyNames.get(r.spend_key_id) ?? r.spend_key_id}
                  </a>
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
