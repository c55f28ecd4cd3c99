/**
 * Whether a JSON text names a key twice in one of its objects. `JSON.parse` keeps the last value and so do most
 * providers' parsers, but not all: one that keeps the first would run a different model or output limit than
 * the one the gateway checked and held for. The gateway forwards the client's bytes, so such a body is refused.
 *
 * Counted, not parsed again: every key of a JSON text is followed by the one `:` outside its strings, so the
 * text has duplicates exactly when it holds more of those than the parsed value holds keys. Both counts are
 * linear in the body and allocate next to nothing (string contents are skipped with `indexOf`).
 */
export function hasDuplicateKeys(text: string, parsed: unknown): boolean {
  return separatorsOutsideStrings(text) !== keysIn(parsed);
}

const COLON = 58;
const BACKSLASH = 92;

function separatorsOutsideStrings(text: string): number {
  let count = 0;
  let at = 0;
  while (at < text.length) {
    const open = text.indexOf('"', at);
    const end = open === -1 ? text.length : open;
    for (let i = at; i < end; i++) if (text.charCodeAt(i) === COLON) count++;
    if (open === -1) break;
    let close = text.indexOf('"', open + 1);
    while (close !== -1 && escaped(text, close)) close = text.indexOf('"', close + 1);
    if (close === -1) break;
    at = close + 1;
  }
  return count;
}

/** A quote is escaped when an odd run of backslashes precedes it. */
function escaped(text: string, quote: number): boolean {
  let run = 0;
  while (text.charCodeAt(quote - 1 - run) === BACKSLASH) run++;
  return run % 2 === 1;
}

/** Every key of every object in a parsed value; iterative, as a body may nest deeper than the call stack. */
function keysIn(value: unknown): number {
  let count = 0;
  const pending: unknown[] = [value];
  const visit = (child: unknown) => {
    if (typeof child === "object" && child !== null) pending.push(child);
  };
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (Array.isArray(next)) {
      for (const item of next) visit(item);
    } else if (typeof next === "object" && next !== null) {
      for (const key in next) {
        count++;
        visit((next as Record<string, unknown>)[key]);
      }
    }
  }
  return count;
}
