/** The price database's match rules: how a model id (an alias, a dated snapshot) finds its priced model. */
export type MatchRule =
  | { or: MatchRule[] }
  | { and: MatchRule[] }
  | { equals: string }
  | { starts_with: string }
  | { ends_with: string }
  | { contains: string }
  | { regex: string };

/** A rule as a predicate, compiled once (regexes built once per isolate); text rules ignore case, as upstream. */
export function compileMatch(rule: MatchRule): (id: string) => boolean {
  if ("or" in rule) {
    const parts = rule.or.map(compileMatch);
    return (id) => parts.some((p) => p(id));
  }
  if ("and" in rule) {
    const parts = rule.and.map(compileMatch);
    return (id) => parts.every((p) => p(id));
  }
  if ("regex" in rule) {
    const re = new RegExp(rule.regex);
    return (id) => re.test(id);
  }
  if ("equals" in rule) {
    const v = rule.equals.toLowerCase();
    return (id) => id.toLowerCase() === v;
  }
  if ("starts_with" in rule) {
    const v = rule.starts_with.toLowerCase();
    return (id) => id.toLowerCase().startsWith(v);
  }
  if ("ends_with" in rule) {
    const v = rule.ends_with.toLowerCase();
    return (id) => id.toLowerCase().endsWith(v);
  }
  const v = rule.contains.toLowerCase();
  return (id) => id.toLowerCase().includes(v);
}

/** The ids a rule names outright (its `equals`, in order): the aliases and snapshots a client can send as they are. */
export function exactNames(rule: MatchRule): string[] {
  if ("or" in rule) return rule.or.flatMap(exactNames);
  return "equals" in rule ? [rule.equals] : [];
}
