/**
 * What `npm run dev` shows of wrangler's own output: everything, except two notices that say nothing about this
 * project and alarm newcomers — the offline `Request.cf` lookup (printed with a stack trace, once per start of
 * its proxy; the gateway does not use `request.cf`) and "Scheduled Workers are not automatically triggered" (the
 * banner says how to run the cron). Any other line, errors included, passes through unchanged.
 */
export function wranglerOutputFilter(write: (line: string) => void): (chunk: Buffer | string) => void {
  let pending = "";
  let skipping: "trace" | "notice" | "blank" | null = null;
  const onLine = (line: string) => {
    // Colour codes stripped (ESC [ … m) before matching.
    const plain = line.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g"), "");
    if (plain.includes("Unable to fetch the `Request.cf` object")) {
      skipping = "trace";
      return;
    }
    if (plain.includes("Scheduled Workers are not automatically triggered")) {
      skipping = "notice";
      return;
    }
    // The lookup's error and stack lines; the cron notice runs until its "For more details" line; blank lines after.
    if (skipping === "trace" && (/^Error: getaddrinfo/.test(plain) || /^\s+at /.test(plain))) return;
    if (skipping === "notice") {
      if (plain.includes("For more details")) skipping = "blank";
      return;
    }
    if (skipping && plain.trim() === "") return;
    skipping = null;
    write(line);
  };
  return (chunk) => {
    pending += chunk.toString();
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) onLine(line);
  };
}
