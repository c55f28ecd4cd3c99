/**
 * `npm run lint` (after Biome): no line over 120 columns in the project's own sources. Biome's formatter wraps
 * code at 120 but leaves long strings and comments as they are; this catches those.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

const MAX = 120;
// The tracked sources only: a user's untracked scratch file is not the project's.
const files = execFileSync("git", ["ls-files", "--cached", "*.ts", "*.tsx", "*.js"], { encoding: "utf8" })
  .split("\n")
  .filter((f) => f && f !== "worker-configuration.d.ts");
const long: string[] = [];
for (const file of files) {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    continue; // deleted in the work tree
  }
  text.split("\n").forEach((line, i) => {
    if ([...line].length > MAX) long.push(`${file}:${i + 1}: ${[...line].length} columns`);
  });
}
if (long.length) {
  console.error(`Lines over ${MAX} columns:\n${long.join("\n")}`);
  process.exit(1);
}
