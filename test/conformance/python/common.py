"""What both SDK scripts share: the run's settings from the environment, a request counter, and the answer.

Each script runs one check (its first argument) against the gateway that `wrangler dev` serves in the conformance
project and prints what it observed as one JSON object on stdout; the TypeScript test asserts on it.
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


def run(checks: dict) -> None:
    name = sys.argv[1]
    if name not in checks:
        sys.exit(f"unknown check {name!r}; known: {', '.join(checks)}")
    checks[name]()
