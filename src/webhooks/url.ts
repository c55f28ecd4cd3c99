/**
 * Where a webhook may point: https only in production (loopback http allowed in development, as for providers),
 * never a loopback, private, link-local or otherwise internal address written as an IP literal or `localhost`.
 * (Names are resolved by Cloudflare's public resolver and `global_fetch_strictly_public` keeps fetches public.)
 * Returns what is wrong, or null.
 */
export function webhookUrlProblem(text: string, production: boolean): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "must be an absolute URL";
  }
  if (url.username || url.password) return "must not carry credentials";
  // `localhost.` and `metadata.google.internal.` are the same names as without the root's trailing dot.
  const host = url.hostname
    .replace(/^\[|\]$/g, "")
    .replace(/\.$/, "")
    .toLowerCase();
  const loopback = host === "localhost" || host.endsWith(".localhost") || /^127\./.test(host) || host === "::1";
  if (url.protocol === "http:" && !production && loopback) return null;
  if (url.protocol !== "https:")
    return production ? "must use https" : "must use https (http only to loopback in development)";
  if (loopback) return "must not point at a loopback address";
  if (internal(host)) return "must not point at a private, link-local or internal address";
  return null;
}

function internal(host: string): boolean {
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(host);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return (
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 100 && b >= 64 && b <= 127) ||
      a >= 224
    );
  }
  if (host.includes(":")) {
    return host === "::" || /^f[cd]/.test(host) || /^fe[89ab]/.test(host) || host.startsWith("::ffff:");
  }
  return host.endsWith(".internal") || host.endsWith(".local") || !host.includes(".");
}
