"""The official `anthropic` Python SDK against Spendgate, with only base_url and api_key changed."""

import asyncio

import anthropic
from common import GATEWAY, KEYS, Counter, answer, run

MODEL = "claude-sonnet-4-20250514"
MESSAGES = [{"role": "user", "content": "Say hello"}]


def client(key: str = KEYS["anthropic"], retries: int = 2) -> tuple[anthropic.Anthropic, Counter]:
    counter = Counter()
    http = anthropic.DefaultHttpxClient(event_hooks={"request": [counter.hook]})
    return anthropic.Anthropic(base_url=GATEWAY, api_key=key, max_retries=retries, http_client=http), counter


def messages() -> None:
    c, _ = client()
    res = c.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    with c.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    events = [e.type for e in c.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True)]
    count = c.messages.count_tokens(model=MODEL, messages=MESSAGES)
    answer(
        {
            "text": res.content[0].text,
            "usage": {"input": res.usage.input_tokens, "output": res.usage.output_tokens},
            "stream_text": text,
            "stream_usage": final.usage.output_tokens,
            "events": events,
            "count_tokens": count.input_tokens,
        }
    )


def models() -> None:
    c, _ = client()
    page = c.models.list(limit=5)
    every = [m.id for m in c.models.list(limit=1000)]
    one = c.models.retrieve(every[0])
    answer({"first_page": len(page.data), "type": page.data[0].type, "all": every, "one": one.id})


def errors() -> None:
    facts: dict = {}
    bad, n = client("sk-sg-wrong")
    try:
        bad.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    except anthropic.AuthenticationError as e:
        facts["auth"] = {"status": e.status_code, "requests": n.count}
    capped, n = client(KEYS["anthropicCapped"], retries=3)
    try:
        capped.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    except anthropic.APIStatusError as e:
        facts["spendCapped"] = {"status": e.status_code, "type": e.body["error"]["type"], "requests": n.count}
    limited, n = client(KEYS["anthropicRateLimited"], retries=3)
    limited.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    limited.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    facts["rate"] = {"requests": n.count}
    answer(facts)


def concurrent() -> None:
    async def main() -> list:
        counter = Counter()
        http = anthropic.DefaultAsyncHttpxClient(event_hooks={"request": [counter.async_hook]})
        key = KEYS["anthropicConcurrent"]
        c = anthropic.AsyncAnthropic(base_url=GATEWAY, api_key=key, max_retries=0, http_client=http)
        calls = [
            c.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": f"hello {i}"}])
            for i in range(20)
        ]
        done = await asyncio.gather(*calls)
        return [r.usage.output_tokens for r in done], counter.count

    tokens, requests = asyncio.run(main())
    answer({"tokens": tokens, "requests": requests})


run({"messages": messages, "models": models, "errors": errors, "concurrent": concurrent})
