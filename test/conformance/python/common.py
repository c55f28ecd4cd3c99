"""What both SDK scripts share: the run's settings from the environment, a request counter, and the answer.

Each script runs one check (its first argument) against the gateway that `wrangler dev` serves in the conformance
project and prints what it observed as one JSON object on stdout; the TypeScript test asserts on it. With
`--serve` a script runs the checks named on its stdin in turn, in one process (see `run`).
"""

import json
import os
import sys

GATEWAY = os.environ["SPENDGATE_URL"]
KEYS = json.loads(os.environ["SPENDGATE_KEYS"])


class Counter:
    """Counts the HTTP requests a client sends (retries included), through httpx event hooks."""

    def __init__(self) -> None:
        self.count = 0

    def hook(self, _request) -> None:
        self.count += 1

    async def async_hook(self, _request) -> None:
        self.count += 1


def answer(facts: dict) -> None:
    print(json.dumps(facts))


DONE = "--spendgate-check-done--"


def run(checks: dict) -> None:
    """Runs the check its first argument names; with `--serve`, each check named on a line of stdin, in turn, each
    followed by a DONE line (`DONE error` when it raised, its traceback on stderr): the SDKs are imported once."""
    name = sys.argv[1]
    if name != "--serve":
        if name not in checks:
            sys.exit(f"unknown check {name!r}; known: {', '.join(checks)}")
        checks[name]()
        return
    import traceback

    for line in sys.stdin:
        name = line.strip()
        try:
            if name not in checks:
                raise KeyError(f"unknown check {name!r}; known: {', '.join(checks)}")
            checks[name]()
            print(DONE, flush=True)
        except Exception:
            traceback.print_exc()
            sys.stderr.flush()
            print(f"{DONE} error", flush=True)
