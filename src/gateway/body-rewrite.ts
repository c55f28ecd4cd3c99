import { worstCaseNanos } from "../catalog/pricing.ts";
import type { AdmitResult } from "../guard/types.ts";
import { type AdmissionPlan, worstOf } from "./admission-plan.ts";
import type { HoldBounds } from "./hold.ts";
import { DEFAULT_TOOL_CALL_LIMIT } from "./server-tools.ts";

type Admission = Extract<AdmitResult, { ok: true }>;

/**
 * Step 4's last part: the body that goes upstream once the guard admitted the request — the client's bytes, or its
 * JSON with the plan's edits and what the admission adds (an output limit the budget lowered, the tool-call limits
 * a spend-limited key's hold relies on) — and what a cut answer can cost (and count in tokens) at most.
 */
export function rewriteBody(
  plan: AdmissionPlan & { bounds: HoldBounds },
  json: Record<string, unknown>,
  bytes: ArrayBuffer,
  admission: Admission,
): { outBody: BodyInit; boundCost: (outputTokens: number) => number; boundTokens: (outputTokens: number) => number } {
  const { bounds, prices } = plan;
  const edits = { ...plan.edits };
  const granted = admission.clampedOutputTokens;
  const before = Object.keys(edits).length;
  if (granted !== undefined) for (const field of bounds.clampFields) edits[field] = granted;
  if (admission.budget.limitNanos !== null) applyToolCallLimits(json, bounds, edits);
  // Serialized again only when the admission added edits (or changed one: a clamped field the client sent).
  const changed = Object.keys(edits).length !== before || granted !== undefined;
  const outBody = changed ? JSON.stringify({ ...json, ...edits }) : (plan.edited ?? bytes);
  const output = granted ?? bounds.outputTokens;
  const most = output * bounds.choices + bounds.extraOutputTokens;
  const boundCost = (outputTokens: number) =>
    prices
      ? worstCaseNanos(
          { ...worstOf(bounds), choices: 1, extraOutputTokens: 0, outputTokens: Math.min(outputTokens, most) },
          prices,
        )
      : 0;
  // The same bound in tokens, for the token limits: the input bound and the output seen, at most the hold's.
  const boundTokens = (outputTokens: number) => bounds.inputTokens + Math.min(outputTokens, most);
  return { outBody, boundCost, boundTokens };
}

/** The hold counted every server tool's calls up to a limit: a spend-limited key's request carries that limit. */
function applyToolCallLimits(json: Record<string, unknown>, bounds: HoldBounds, edits: Record<string, unknown>) {
  if (!bounds.toolCallLimits.length) return;
  const tools = Array.isArray(json.tools) ? [...json.tools] : [];
  for (const limit of bounds.toolCallLimits) {
    if (limit.field === "max_tool_calls") edits.max_tool_calls = DEFAULT_TOOL_CALL_LIMIT;
    else tools[limit.tool] = { ...(tools[limit.tool] as object), max_uses: DEFAULT_TOOL_CALL_LIMIT };
  }
  if (bounds.toolCallLimits.some((l) => l.field === "max_uses")) edits.tools = tools;
}
