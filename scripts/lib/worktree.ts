import { execFileSync } from "node:child_process";
import { symlinkSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./stack.ts";

/**
 * A git revision's source, checked out beside this one: the A/B and scale benches and the upgrade test build and
 * serve an older revision from it. A detached worktree shares this checkout's objects and its node_modules (linked),
 * so it costs seconds, not an install.
 */

const git = (...args: string[]) => execFileSync("git", args, { cwd: ROOT, encoding: "utf8" }).trim();

/** Checks `rev` out into `dir` (which must not exist); answers the commit it resolved to. */
export function checkoutRevision(rev: string, dir: string): { source: string; commit: string } {
  const commit = git("rev-parse", "--verify", `${rev}^{commit}`);
  git("worktree", "add", "--quiet", "--detach", dir, commit);
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return { source: dir, commit };
}

/** Removes a checkout made by `checkoutRevision` (its files and git's record of it). */
export function removeCheckout(dir: string): void {
  git("worktree", "remove", "--force", dir);
}
