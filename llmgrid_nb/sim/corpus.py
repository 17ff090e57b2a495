'''The bundled text the simulated models answer with, topic picking, and word-piece tokens.'''

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

__all__ = [
    "TOPICS",
    "XSS_PAYLOAD",
    "Topic",
    "answer_tokens",
    "pick_topic",
    "prose_sentences",
    "tokenize",
    "words",
]


@dataclass(frozen=True, slots=True)
class Topic:
    """A subject the simulator can talk about: a title, match keywords and Markdown blocks."""

    key: str
    title: str
    keywords: frozenset[str]
    blocks: tuple[str, ...]


def _unwrap(block: str) -> str:
    """Join hard-wrapped prose lines (models do not wrap); code, list items and headings stay."""
    block = block.strip()
    if block.startswith("```"):
        return block
    lines: list[str] = []
    for line in block.split("\n"):
        if lines and line and not line.startswith(("- ", "#")) and not lines[-1].startswith("#") and lines[-1]:
            lines[-1] += " " + line
        else:
            lines.append(line)
    return "\n".join(lines)


def _topic(key: str, title: str, keywords: str, *blocks: str) -> Topic:
    return Topic(key, title, frozenset(keywords.split()), tuple(_unwrap(b) for b in blocks))


TOPICS: tuple[Topic, ...] = (
    _topic(
        "sse",
        "Server-Sent Events and streaming responses",
        "sse server-sent event events stream streaming streamed eventsource chunk chunks "
        "chunked push text/event-stream token tokens incremental",
        """
Server-Sent Events are a simple way for a server to push a stream of messages to a client
over one long-lived HTTP response. The response has the content type `text/event-stream`,
and every message is a group of lines such as `data: ...` followed by a blank line. Because
it is plain HTTP, it passes through most proxies and needs no special handshake.
""",
        """
Large language model APIs use this format to stream tokens as soon as they are generated.
Each event carries a small JSON object with a delta, and the client appends the deltas to
rebuild the answer. The stream usually ends with a sentinel such as `data: [DONE]`, which
tells the client that nothing else will follow.
""",
        """
A robust client reads the body incrementally and splits it into lines itself:

- a line may arrive split across two network reads;
- a multi-byte UTF-8 character may be cut in half;
- comments start with a colon and should be ignored;
- an event ends only at an empty line.
""",
        """
```python
async for line in response.aiter_lines():
    if line.startswith("data: "):
        payload = line[len("data: "):]
        if payload == "[DONE]":
            break
        handle(json.loads(payload))
```
""",
        """
Buffering is the usual enemy of streaming. A reverse proxy that collects the whole response
before forwarding it turns a live stream into one late burst, so the time to first token
looks huge even when the model was fast. Disabling proxy buffering and flushing after every
event keeps the stream honest.
""",
    ),
    _topic(
        "http",
        "How HTTP requests and responses work",
        "http https request requests response responses header headers status code codes get "
        "post rest api keep-alive connection proxy url method body json",
        """
HTTP is a request and response protocol. The client opens a connection, sends a method such
as GET or POST with a path and a set of headers, and the server answers with a status code,
its own headers and an optional body. Most APIs today exchange JSON bodies over HTTPS.
""",
        """
Status codes tell the client what happened before it reads a single byte of the body. The
ones worth handling explicitly are:

- `200 OK` when everything worked;
- `400 Bad Request` and `422` when the input was rejected;
- `401` and `403` when credentials are missing or not allowed;
- `429 Too Many Requests` when the client should slow down;
- `500`, `502` and `503` when the server or a gateway failed.
""",
        """
Connections are expensive to open, especially with TLS, so clients keep them alive and reuse
them for later requests. A connection pool with sensible limits avoids both the handshake
cost and the risk of opening thousands of sockets at once.
""",
        """
Chunked transfer encoding lets a server start sending a body before it knows its length.
Each chunk is prefixed with its size in hexadecimal, and a chunk of size zero ends the body.
If the connection closes before that final chunk, the client knows the response was cut
short rather than complete.
""",
        """
Timeouts deserve separate values for connecting, reading, writing and waiting for a pooled
connection. A single overall timeout is easy to reason about, but a read timeout is what
detects a server that stopped sending in the middle of a streamed response.
""",
    ),
    _topic(
        "asyncio",
        "Concurrency with asyncio",
        "asyncio async await coroutine coroutines event loop task tasks concurrency concurrent "
        "gather cancel cancellation taskgroup semaphore nonblocking",
        """
The asyncio library runs many coroutines on a single thread by switching between them
whenever one of them waits for input or output. An `await` is a point where the coroutine
may pause, which makes it a good fit for programs that spend most of their time waiting on
the network.
""",
        """
Tasks wrap coroutines so that they run concurrently. A task group starts several of them and
waits for all of them, and if one fails the others are cancelled, so errors are never lost
silently.
""",
        """
```python
async def fetch_all(urls):
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(fetch(url)) for url in urls]
    return [task.result() for task in tasks]
```
""",
        """
Cancellation is delivered as an exception at the next await point. Code that holds a
resource should release it in a `finally` block or an `async with` statement, and it should
let the cancellation propagate instead of swallowing it.
""",
        """
The event loop is cooperative, which has a cost: a function that computes for a long time
without awaiting blocks every other task. Heavy work belongs in a thread or a process pool,
and the loop should only coordinate. A semaphore is the usual tool to cap how many requests
run at the same time.
""",
    ),
    _topic(
        "latency",
        "Measuring LLM latency",
        "latency latencies ttft time first token throughput tokens/s tps speed fast slow "
        "benchmark measure measuring metric metrics percentile p50 p95 p99 inter-token jitter",
        """
The latency of a language model is not one number. Time to first token measures how long
the user waits before anything appears, while throughput in tokens per second measures how
quickly the rest of the answer arrives once it has started.
""",
        """
## Metrics worth recording

- **TTFT**: from sending the request to receiving the first content token;
- **inter-token latency**: the gaps between consecutive tokens, whose spread shows stalls;
- **throughput**: output tokens divided by the time from the first to the last token;
- **total time**: from the request to the end of the stream.
""",
        """
Averages hide the experience of the unlucky users, so report percentiles such as the median
and the 95th or 99th percentile. Run each prompt several times and across the day, because
load on the provider changes the numbers more than most prompt changes do.
""",
        """
Measure on the client with a monotonic clock, and record the timestamp as soon as bytes are
read from the socket rather than after parsing or rendering. Otherwise the cost of the user
interface is charged to the model.
""",
        """
Network distance, TLS setup and queueing at the provider all land inside the time to first
token. Comparing models fairly means sending the same prompt at the same moment, from the
same machine, over connections that are already warm.
""",
    ),
    _topic(
        "tokenization",
        "Tokenization in language models",
        "token tokens tokenizer tokenization tokenize bpe byte-pair vocabulary subword word "
        "piece pieces encoding utf-8 unicode count counting",
        """
Language models do not read characters or whole words. They read tokens, which are pieces
of words taken from a fixed vocabulary learned from a large body of text. Frequent words
become a single token, while rare words are split into several pieces.
""",
        """
Byte pair encoding builds that vocabulary by starting from single bytes and repeatedly
merging the most frequent adjacent pair. The result handles any input, including emoji and
source code, because it can always fall back to individual bytes.
""",
        """
A useful rule of thumb for English prose is that one token is about four characters, or
three quarters of a word. Other languages and code often need more tokens for the same
amount of text, which affects both the price and the speed of a request.
""",
        """
Streaming APIs send text in token-sized deltas, but a delta is not always valid text on its
own: a multi-byte character can be split across two tokens. Clients should decode the byte
stream incrementally instead of decoding each piece in isolation.
""",
        """
```python
import tiktoken

encoding = tiktoken.get_encoding("cl100k_base")
tokens = encoding.encode("Server-Sent Events")
print(len(tokens), tokens)
```
""",
    ),
    _topic(
        "caching",
        "Caching strategies",
        "cache caches caching cached hit miss ttl expiry expire invalidation invalidate lru "
        "memoize memoization redis cdn stale",
        """
A cache keeps the result of an expensive operation so that the next request for the same
thing is answered quickly. The hard part is not storing values but deciding when a stored
value is no longer true.
""",
        """
The common policies are simple to state:

- **time to live** expires entries after a fixed duration;
- **least recently used** evicts the entries nobody asked for lately;
- **write-through** updates the cache and the source together;
- **stale-while-revalidate** serves an old value while a fresh one is fetched.
""",
        """
Cache keys must include everything that changes the answer. For a language model that means
the model name, the full prompt, the sampling parameters and the seed; leaving out the
temperature, for example, silently returns one creative answer to every later request.
""",
        """
```python
from functools import lru_cache

@lru_cache(maxsize=1024)
def lookup(key: str) -> str:
    return slow_backend(key)
```
""",
        """
A cache in front of a slow service also changes its failure modes. When the cache is cold
or flushed, every request reaches the backend at once, so warm it gradually or coalesce
identical requests into one.
""",
    ),
    _topic(
        "databases",
        "Working with databases",
        "database databases sql query queries index indexes table tables transaction "
        "transactions postgres postgresql sqlite mysql schema join orm",
        """
A relational database stores data in tables and answers questions written in SQL. Its most
valuable promise is the transaction: a group of changes that either all happen or none of
them do, even if the machine crashes halfway through.
""",
        """
Indexes make lookups fast by keeping a sorted structure next to the table, at the price of
slower writes and more disk space. Add them for the columns that appear in filters and
joins, and check the query plan instead of guessing.
""",
        """
```sql
CREATE INDEX idx_runs_model ON runs (model, started_at);
SELECT model, avg(ttft_ms) FROM runs
WHERE started_at > now() - interval '1 day'
GROUP BY model;
```
""",
        """
SQLite is an excellent default for a single process: it is a library rather than a server,
and the whole database is one file. PostgreSQL becomes the better choice once many clients
write at the same time or the data outgrows one machine.
""",
        """
Connection pools matter here as much as for HTTP. Opening a database connection can take
longer than the query itself, so keep a small pool and return connections promptly, even
when an error is raised.
""",
    ),
    _topic(
        "python",
        "Writing good Python",
        "python pythonic function functions class classes dataclass dataclasses typing type "
        "hints module modules package packages pip venv virtualenv import list dict",
        """
Python rewards code that is plain and explicit. Small functions with clear names, type hints
on public interfaces and data held in dataclasses make a program easier to read than clever
one-line tricks.
""",
        """
```python
from dataclasses import dataclass

@dataclass(frozen=True, slots=True)
class Sample:
    model: str
    ttft_ms: float
```
""",
        """
A few habits pay off in every project:

- keep modules small and named after what they contain;
- use a virtual environment per project;
- prefer the standard library before adding a dependency;
- raise specific exceptions with messages a user can act on.
""",
        """
The import system runs a module's top level the first time it is imported, so heavy work at
import time slows down every program that uses the package. Import expensive libraries
inside the function that needs them when they are optional.
""",
        """
Testing is built in through the unittest module, but pytest has become the common choice
because plain assert statements and fixtures keep the tests short. A test should fail when
the behaviour it describes breaks, which is easy to check by breaking it once.
""",
    ),
    _topic(
        "jupyter",
        "Working in Jupyter notebooks",
        "jupyter jupyterlab notebook notebooks kernel ipython cell cells widget widgets "
        "magic ipywidgets anywidget output display interactive",
        """
A Jupyter notebook mixes code, results and prose in one document. Each cell runs in a kernel
that keeps its state between cells, which makes exploration fast but also makes it easy to
depend on a cell that was run out of order.
""",
        """
Widgets connect Python objects in the kernel with views in the browser. The state lives in
traits on the Python side, is synchronised to the front end, and every view of the same
widget shows the same data, even after the page is reloaded.
""",
        """
## Keeping notebooks responsive

- do long work in the background instead of blocking the kernel;
- send updates to the browser in batches rather than one message per event;
- keep large results out of the saved notebook.
""",
        """
Magics are commands that start with a percent sign. A line magic such as `%timeit` applies
to one line, while a cell magic such as `%%time` applies to the whole cell, and extensions
can register their own.
""",
        """
Before sharing a notebook, restart the kernel and run every cell from the top. If it does
not work from a clean start, the result on the screen was produced by state that no longer
exists.
""",
    ),
    _topic(
        "networking",
        "Networking fundamentals",
        "network networking tcp ip udp socket sockets dns port ports packet packets bandwidth "
        "loopback localhost firewall nagle handshake tls",
        """
Most application traffic travels over TCP, which turns unreliable packets into an ordered
stream of bytes. Before any data flows, the client and server perform a handshake, and with
TLS on top a second handshake negotiates the encryption keys.
""",
        """
Latency and bandwidth are different limits. Bandwidth is how many bytes per second fit
through the link, while latency is how long one byte takes to cross it. Streaming small
tokens is almost entirely bound by latency.
""",
        """
Small writes can be delayed by Nagle's algorithm, which waits to combine them into larger
packets. Servers that stream events usually set `TCP_NODELAY` so that every event leaves as
soon as it is written.
""",
        """
A connection can end in two ways. A normal close sends a FIN after all data, while a reset
sends an RST and discards anything still buffered. Clients should treat an unexpected reset
during a response as a transient failure that may be retried.
""",
        """
```text
$ ss -tnp state established '( dport = :443 )'
Recv-Q Send-Q  Local Address:Port   Peer Address:Port
0      0       10.0.0.12:51514      104.18.6.192:443
```
""",
    ),
    _topic(
        "reliability",
        "Retries, timeouts and reliability",
        "retry retries retrying backoff exponential timeout timeouts failure failures fail "
        "error errors reliability resilient circuit breaker idempotent rate limit 429 flaky",
        """
Networks and services fail in small ways all the time, so a reliable client expects errors
and recovers from the transient ones. The difficult part is telling a transient failure from
one that will happen again no matter how often it is retried.
""",
        """
## A sensible retry policy

- retry connection errors, resets, `429` and `5xx` responses;
- never retry `400`, `401`, `403` or `404`, because the answer will not change;
- wait with exponential backoff and random jitter between attempts;
- honour the `Retry-After` header when the server sends one;
- give up after a few attempts and report the last error.
""",
        """
```python
delay = min(cap, base * 2 ** attempt)
await asyncio.sleep(delay * random.uniform(0.5, 1.0))
```
""",
        """
Streaming adds a twist: a stream can fail after it has already shown half an answer.
Retrying from the start is usually correct, but the interface should make clear that the
earlier partial text was discarded, and the latency of the failed attempt still counts.
""",
        """
Timeouts are the other half of reliability. A stream that stops sending without closing the
connection will hang forever unless a read timeout notices the silence, and an overall
deadline keeps one slow provider from delaying a whole comparison.
""",
    ),
    _topic(
        "general",
        "A general overview",
        "",
        """
That is a good question, and the answer depends on what you want to optimise. It helps to
start with a concrete goal, measure where things stand today, and change one thing at a time
so that each improvement can be attributed to its cause.
""",
        """
A practical approach usually has three parts:

- describe the problem in one or two sentences;
- try the simplest solution that could work and measure it;
- keep what helps and remove what does not.
""",
        """
Most problems that look complicated become manageable once they are split into smaller
pieces with clear inputs and outputs. Small pieces are easier to test, easier to replace and
easier to explain to the next person who reads the code.
""",
        """
It is also worth writing down the assumptions you made along the way. When the results
surprise you later, the list of assumptions is the first place to look, and it often turns
a long investigation into a short one.
""",
    ),
)

_TOPIC_BY_KEY = {t.key: t for t in TOPICS}
FALLBACK = _TOPIC_BY_KEY["general"]

XSS_PAYLOAD = (
    'Here is an image <img src=x onerror="window.__llmgrid_xss=1"> and a script '
    "<script>window.__llmgrid_xss=1</script> and a [harmless looking link](javascript:alert(1)).\n\n"
    '<svg onload="window.__llmgrid_xss=1"><circle r="4"/></svg> A [data link](data:text/html;base64,'
    'PHNjcmlwdD53aW5kb3cuX19sbG1ncmlkX3hzcz0xPC9zY3JpcHQ+) and <a href="javascript:window.__llmgrid_xss=1">'
    'a raw link</a>.\n\n'
    '<div style="position:fixed;top:0;left:0;width:100vw;height:100vh;z-index:99999;background:red">'
    "covering the page</div><style>body{display:none}</style> "
    "![tracking pixel](https://tracker.example/pixel.png) <iframe src=\"javascript:window.__llmgrid_xss=1\">"
    "</iframe>\n\n"
)

_WORD = re.compile(r"[a-z0-9][a-z0-9/\-]*")
# GPT-2 style pre-tokenisation: contractions, words with their leading space, numbers,
# punctuation runs, and whitespace that is not followed by a word.
_PIECE = re.compile(r"'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+| ?\d{1,3}| ?(?:[^\s\w]|_)+|\n+|\s+(?!\S)|\s+")
_MAX_PIECE = 10


def words(text: str) -> set[str]:
    """Lower-cased words of ``text`` for keyword matching."""
    return {w.strip("-/") for w in _WORD.findall(text.lower())}


def topic_by_key(key: str) -> Topic:
    """The topic named ``key``, or the general fallback."""
    return _TOPIC_BY_KEY.get(key, FALLBACK)


def pick_topic(prompt: str, seed: int = 0) -> Topic:
    """The topic sharing most keywords with ``prompt``; ties broken by ``seed``, none → general."""
    prompt_words = words(prompt)
    scored = [(len(t.keywords & prompt_words), t) for t in TOPICS if t.keywords]
    best = max(score for score, _ in scored)
    if best == 0:
        return FALLBACK
    tied = [t for score, t in scored if score == best]
    return tied[seed % len(tied)]


def tokenize(text: str) -> list[str]:
    """Split ``text`` into word pieces with their leading space; joining them gives ``text`` back."""
    pieces: list[str] = []
    for piece in _PIECE.findall(text):
        if len(piece) <= _MAX_PIECE or not piece.strip().isalpha():
            pieces.append(piece)
            continue
        # Long words become several sub-word pieces, as a BPE vocabulary would split them.
        while len(piece) > _MAX_PIECE:
            cut = (len(piece) + 1) // 2 if len(piece) <= 2 * _MAX_PIECE else 7
            pieces.append(piece[:cut])
            piece = piece[cut:]
        pieces.append(piece)
    return pieces


@functools.lru_cache(maxsize=256)
def _topic_text(key: str, rotation: int) -> tuple[str, ...]:
    topic = _TOPIC_BY_KEY[key]
    blocks = topic.blocks[rotation:] + topic.blocks[:rotation]
    text = f"## {topic.title}\n\n" + "\n\n".join(blocks)
    return tuple(tokenize(text))


def answer_tokens(prompt: str, seed: int, n: int, *, xss: bool = False) -> list[str]:
    """The first ``n`` tokens of the answer to ``prompt`` for ``seed`` (more if ``xss`` needs them)."""
    topic = pick_topic(prompt, seed)
    out: list[str] = tokenize(XSS_PAYLOAD) if xss else []
    n = max(n, len(out)) if xss else n
    order = [topic] + [t for t in TOPICS if t is not topic]
    i = 0
    while len(out) < n:
        t = order[i % len(order)]
        if out and not out[-1].endswith("\n"):
            out.append("\n\n")
        out.extend(_topic_text(t.key, seed % len(t.blocks)))
        i += 1
    cites = sorted({int(m) for m in _SOURCE_LINE.findall(prompt)})
    if cites:
        out = _cite(out, cites)
    return out[:n]


_SOURCE_LINE = re.compile(r"^\[(\d{1,2})\]", re.M)


def _cite(tokens: list[str], cites: list[int]) -> list[str]:
    """Cite the prompt's numbered sources, like a grounded model: " [k]" before every other full stop."""
    out: list[str] = []
    sentence = 0
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else " "
        if tok == "." and nxt[:1] in (" ", "\n") and out and out[-1][-1:].isalnum():
            if sentence % 2 == 0:
                out.append(f" [{cites[(sentence // 2) % len(cites)]}]")
            sentence += 1
        out.append(tok)
    return out


def reasoning_tokens(prompt: str, seed: int, n: int) -> list[str]:
    """``n`` tokens of plausible step-by-step thinking about ``prompt``'s topic."""
    topic = pick_topic(prompt, seed)
    sentences = prose_sentences(topic)
    text = (
        f"The user is asking about {topic.title.lower()}. Let me think about what matters most "
        "here and how to structure the answer. "
        + " ".join(sentences[(seed + i) % len(sentences)] for i in range(len(sentences)))
        + " I will start with a short heading, then explain the key points clearly."
    )
    out: list[str] = []
    while len(out) < n:
        out.extend(tokenize(text if not out else " " + text))
    return out[:n]


@functools.lru_cache(maxsize=64)
def _sentences(key: str) -> tuple[str, ...]:
    topic = _TOPIC_BY_KEY[key]
    found: list[str] = []
    for block in topic.blocks:
        if block.startswith(("```", "-", "#")):
            continue
        flat = " ".join(block.replace("`", "").split())
        found.extend(s.strip() for s in re.split(r"(?<=[.!?])\s+", flat) if s.strip())
    return tuple(found)


def prose_sentences(topic: Topic) -> tuple[str, ...]:
    """The plain prose sentences of ``topic`` (no code, lists or headings, backticks removed)."""
    return _sentences(topic.key)
