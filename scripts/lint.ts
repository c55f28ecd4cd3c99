/**
 * `npm run lint`: the project's own files — those git tracks — never a user's untracked scratch file (a
 * `quickstart.ts` saved beside the README must not fail `npm test`). Biome (format and lint rules), no line over
 * 120 columns (line-length.ts), the compiled price catalog up to date, the import layers
 * (scripts/import-rules.cjs), and a map (docs/architecture.md) that names every file of src/. Outside a git
 * checkout it checks the whole tree.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { ROOT } from "./lib/stack.ts";

const bin = (name: string) => join(ROOT, "node_modules", ".bin", name);

/** The tracked files with these extensions, or null outside a git checkout. */
function trackedFiles(...patterns: string[]): string[] | null {
  try {
    const out = execFileSync("git", ["ls-files", "--cached", "--", ...patterns], { cwd: ROOT, encoding: "utf8" });
    return out.split("\n").filter(Boolean);
  } catch {
    return null;
  }
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { cwd: ROOT, stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

const tracked = trackedFiles("*.ts", "*.tsx", "*.js", "*.cjs", "*.mjs", "*.json", "*.jsonc");
run(bin("biome"), ["check", "--files-ignore-unknown=true", "--no-errors-on-unmatched", ...(tracked ?? ["."])]);
run(process.execPath, [join(ROOT, "scripts", "line-length.ts")]);
run(process.execPath, [join(ROOT, "scripts", "catalog.ts"), "--check"]);
run(bin("depcruise"), ["--config", "scripts/import-rules.cjs", "--output-type", "err", "src"]);

// The map in docs/architecture.md names every file of the Worker, so a newcomer finds each one there.
const architecture = readFileSync(join(ROOT, "docs", "architecture.md"), "utf8");
const unnamed = (trackedFiles("src/*") ?? []).filter((f) => !architecture.includes(basename(f)));
if (unnamed.length) {
  console.error(`docs/architecture.md does not name:\n${unnamed.join("\n")}`);
  process.exit(1);
}
