"""The Brave Web Search emulator and the pages its results point at."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from llmgrid_nb.sim import SimServer


def search(client: httpx.Client, token: str | None = None, **params: Any) -> httpx.Response:
    headers = {"X-Subscription-Token": token if token is not None else uuid.uuid4().hex}
    return client.get("/res/v1/web/search", params=params, headers=headers)


def test_response_has_brave_shape(client: httpx.Client, sim: SimServer) -> None:
    reply = search(client, q="python asyncio event loop", count=5)
    assert reply.status_code == 200
    body = reply.json()
    assert body["type"] == "search"
    assert body["query"]["original"] == "python asyncio event loop"
    assert body["query"]["more_results_available"] is True
    assert body["mixed"]["type"] == "mixed"
    results = body["web"]["results"]
    assert body["web"]["type"] == "search" and len(results) == 5
    for r in results:
        assert r["type"] == "search_result"
        assert r["url"].startswith(sim.url + "/pages/")
        assert set(r["profile"]) == {"name", "url", "long_name", "img"}
        assert set(r["meta_url"]) == {"scheme", "netloc", "hostname", "favicon", "path"}
        assert r["meta_url"]["hostname"] == "127.0.0.1"
        assert r["title"] and r["page_age"] and r["age"] and r["language"] == "en"
        assert "extra_snippets" not in r
    assert any("<strong>" in r["description"] for r in results)


def test_plain_descriptions_and_extra_snippets(client: httpx.Client) -> None:
    body = search(client, q="http retries", text_decorations="false", extra_snippets="true").json()
    results = body["web"]["results"]
    assert len(results) == 20
    assert all("<strong>" not in r["description"] for r in results)
    assert all(isinstance(r["extra_snippets"], list) and r["extra_snippets"] for r in results)


def test_offset_pages_differ(client: httpx.Client) -> None:
    first = search(client, q="caching", count=3, offset=0).json()["web"]["results"]
    second = search(client, q="caching", count=3, offset=1).json()["web"]["results"]
    assert {r["url"] for r in first}.isdisjoint(r["url"] for r in second)
    last = search(client, q="caching", count=3, offset=9).json()
    assert last["query"]["more_results_available"] is False


@pytest.mark.parametrize(
    ("params", "loc"),
    [({}, "q"), ({"q": "x" * 401}, "q"), ({"q": "a", "count": 21}, "count"), ({"q": "a", "count": 0}, "count"),
     ({"q": "a", "offset": 10}, "offset"), ({"q": "a", "safesearch": "none"}, "safesearch")],
)
def test_validation_errors(client: httpx.Client, params: dict[str, Any], loc: str) -> None:
    reply = search(client, **params)
    assert reply.status_code == 422
    body = reply.json()
    assert body["type"] == "ErrorResponse" and body["error"]["code"] == "VALIDATION"
    assert body["error"]["meta"]["errors"][0]["loc"] == ["query", loc]
    assert isinstance(body["time"], int) and body["error"]["status"] == 422


@pytest.mark.parametrize("token", ["", "invalid"])
def test_invalid_token(client: httpx.Client, token: str) -> None:
    reply = search(client, token=token, q="python")
    assert reply.status_code == 422
    error = reply.json()["error"]
    assert error["code"] == "SUBSCRIPTION_TOKEN_INVALID"
    assert error["detail"] == "The provided subscription token is invalid."
    assert len(error["id"]) == 36


def test_rate_limit_headers_and_429(client: httpx.Client) -> None:
    token = uuid.uuid4().hex
    ok = search(client, token=token, q="python")
    assert ok.status_code == 200
    assert ok.headers["x-ratelimit-limit"] == "1, 15000"
    assert ok.headers["x-ratelimit-policy"] == "1;w=1, 15000;w=2592000"
    assert ok.headers["x-ratelimit-remaining"] == "0, 14999"
    per_second, monthly = (int(v) for v in ok.headers["x-ratelimit-reset"].split(", "))
    assert per_second <= 1 and monthly > 0
    limited = search(client, token=token, q="python")
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "RATE_LIMITED"
    assert "retry-after" not in limited.headers
    assert "x-ratelimit-remaining" in limited.headers
    time.sleep(1.05)
    again = search(client, token=token, q="python")
    assert again.status_code == 200 and again.headers["x-ratelimit-remaining"] == "0, 14998"


def test_hostile_results_point_at_private_addresses(client: httpx.Client) -> None:
    results = search(client, q="admin", sim_hostile=1).json()["web"]["results"]
    urls = [r["url"] for r in results]
    assert "http://169.254.169.254/latest/meta-data/" in urls
    assert "http://10.0.0.5/" in urls


def test_result_pages_are_articles(client: httpx.Client) -> None:
    url = search(client, q="tokenization bpe", count=1).json()["web"]["results"][0]["url"]
    page = httpx.get(url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for tag in ("<nav", "<header", "<footer", "<article>", "</article>"):
        assert tag in html
    article = html.split("<article>")[1].split("</article>")[0]
    assert article.count("<p>") >= 3
    assert "Tokenization" in article


def test_page_variants(client: httpx.Client) -> None:
    assert client.get("/pages/error/http-1").status_code == 500
    big = client.get("/pages/big/http-1")
    assert big.status_code == 200 and 190_000 <= len(big.content) <= 260_000
    with pytest.raises(httpx.ReadTimeout):
        client.get("/pages/slow/http-1", timeout=1)
