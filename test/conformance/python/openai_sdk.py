"""The official `openai` Python SDK against Spendgate, with only base_url and api_key changed."""

import asyncio

import openai
from common import GATEWAY, KEYS, Counter, answer, run

BASE = f"{GATEWAY}/v1"
MESSAGES = [{"role": "user", "content": "Say hello"}]


def client(key: str = KEYS["openai"], retries: int = 2) -> tuple[openai.OpenAI, Counter]:
    counter = Counter()
    http = openai.DefaultHttpxClient(event_hooks={"request": [counter.hook]})
    return openai.OpenAI(base_url=BASE, api_key=key, max_retries=retries, http_client=http), counter


def chat_json() -> None:
    c, _ = client()
    res = c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    answer({"content": res.choices[0].message.content, "usage": res.usage.model_dump() if res.usage else None})


def chat_stream() -> None:
    """Streams with and without include_usage: only a client that asked sees the usage chunk."""
    c, _ = client()
    plain = list(c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    asked = list(
        c.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(ch.choices[0].delta.content or "" for ch in plain if ch.choices)
    with c.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as helper:
        final = helper.get_final_completion()
    answer(
        {
            "text": text,
            "plain_usage_chunks": sum(1 for ch in plain if ch.usage is not None),
            "plain_choiceless_chunks": sum(1 for ch in plain if not ch.choices),
            "asked_usage": [ch.usage.completion_tokens for ch in asked if ch.usage is not None],
            "asked_last_is_usage": asked[-1].usage is not None and not asked[-1].choices,
            "helper_text": final.choices[0].message.content,
        }
    )


def responses() -> None:
    c, _ = client()
    res = c.responses.create(model="gpt-4o-mini", input="hello")
    events = [e.type for e in c.responses.create(model="gpt-4o-mini", input="hello", stream=True)]
    with c.responses.stream(model="gpt-4o-mini", input="hello") as s:
        final = s.get_final_response()
    answer(
        {
            "text": res.output_text,
            "usage": res.usage.output_tokens if res.usage else None,
            "events": events,
            "stream_usage": final.usage.output_tokens if final.usage else None,
        }
    )


def embeddings_and_models() -> None:
    c, _ = client()
    e = c.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    models = [m.id for m in c.models.list()]
    one = c.models.retrieve("gpt-4o-mini")
    answer({"vectors": len(e.data), "dims": len(e.data[0].embedding), "models": models, "one": one.id})


def errors() -> None:
    """The SDK's own error classes, and which it retries: a rate limit with retry-after yes, the caps no."""
    facts: dict = {}
    bad, n = client("sk-sg-wrong", retries=2)
    try:
        bad.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    except openai.AuthenticationError as e:
        facts["auth"] = {"status": e.status_code, "requests": n.count}
    c, _ = client(KEYS["allowedMini"], retries=0)
    for name, model in [("permission", "gpt-4o"), ("not_found", "nope-1")]:
        try:
            c.chat.completions.create(model=model, messages=MESSAGES)
        except openai.APIStatusError as e:
            facts[name] = {"class": type(e).__name__, "status": e.status_code}
    for name in ["spendCapped", "requestCapped"]:
        capped, n = client(KEYS[name], retries=3)
        if name == "requestCapped":
            capped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # the one request allowed
            n.count = 0
        try:
            capped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        except openai.RateLimitError as e:
            facts[name] = {"code": e.code, "requests": n.count, "retry_after": e.response.headers.get("retry-after")}
    # One request a second at most (burst 1): the second of two back-to-back calls gets a 429 with retry-after
    # and the SDK retries it after waiting.
    limited, n = client(KEYS["rateLimited"], retries=3)
    raw = limited.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    second = limited.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    facts["rate"] = {"first": raw.http_response.status_code, "second": second.choices[0].message.content is not None}
    facts["rate"]["requests"] = n.count
    answer(facts)


def concurrent() -> None:
    """20 calls at once from the async client."""

    async def main() -> list:
        counter = Counter()
        http = openai.DefaultAsyncHttpxClient(event_hooks={"request": [counter.async_hook]})
        c = openai.AsyncOpenAI(base_url=BASE, api_key=KEYS["concurrent"], max_retries=0, http_client=http)
        calls = [
            c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"hello {i}"}])
            for i in range(20)
        ]
        done = await asyncio.gather(*calls)
        return [r.usage.completion_tokens for r in done], counter.count

    tokens, requests = asyncio.run(main())
    answer({"tokens": tokens, "requests": requests})


run(
    {
        "chat_json": chat_json,
        "chat_stream": chat_stream,
        "responses": responses,
        "embeddings_and_models": embeddings_and_models,
        "errors": errors,
        "concurrent": concurrent,
    }
)
