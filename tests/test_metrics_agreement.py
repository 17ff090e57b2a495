"""Our summary agrees with the public tools' formulas, computed independently from grid.chunks.

vLLM ``benchmarks/benchmark_serving.py``: ttft = first chunk - request start; itl = every gap
between consecutive chunks; e2el = last chunk - request start; tpot = (e2el - ttft) /
(output_len - 1). genai-perf / AIPerf: time_to_first_token; inter_token_latency =
(request_latency - ttft) / (output_tokens - 1); output token throughput per request =
output_tokens / request_latency.
"""

from __future__ import annotations

import numpy as np
import pytest

import llmgrid_nb as lg

CONTENT = {"token", "reasoning", "tool_call", "final_synthesis"}


@pytest.fixture(scope="module")
def grid() -> lg.Grid:
    return lg.run("Explain SSE", ["sim/steady?tokens=40&rate=80&seed=1", "sim/bursty?tokens=60&seed=2",
                                  "sim/reasoning?tokens=20&reasoning=15&rate=150"])


def test_vllm_bench_serve_formulas(grid: lg.Grid) -> None:
    for row in grid.summary.itertuples():
        content = grid.chunks[(grid.chunks.source == row.source) & grid.chunks.kind.isin(CONTENT)]
        times = content.t_s.to_numpy() - row.t_request_s
        ttft = times[0]
        itl = np.diff(times)
        e2el = times[-1]
        tpot = (e2el - ttft) / (row.output_tokens - 1)
        assert row.ttft_s == pytest.approx(ttft, abs=1e-9)
        assert row.e2e_s == pytest.approx(e2el, abs=1e-9)
        assert row.tpot_s == pytest.approx(tpot, rel=1e-9)
        assert row.icl_p50_s == pytest.approx(np.percentile(itl, 50), abs=1e-9)
        assert row.icl_p99_s == pytest.approx(np.percentile(itl, 99), abs=1e-9)


def test_genai_perf_formulas(grid: lg.Grid) -> None:
    for row in grid.summary.itertuples():
        content = grid.chunks[(grid.chunks.source == row.source) & grid.chunks.kind.isin(CONTENT)]
        request_latency = content.t_s.iloc[-1] - row.t_request_s
        ttft = content.t_s.iloc[0] - row.t_request_s
        inter_token_latency = (request_latency - ttft) / (row.output_tokens - 1)
        assert row.tpot_s == pytest.approx(inter_token_latency, rel=1e-9)
        assert row.decode_tokens_per_s == pytest.approx(1 / inter_token_latency, rel=1e-9)
        assert row.e2e_tokens_per_s == pytest.approx(row.output_tokens / request_latency, rel=1e-9)


def test_usage_only_trailing_chunk_does_not_extend_e2e(grid: lg.Grid) -> None:
    for row in grid.summary.itertuples():
        rows = grid.chunks[grid.chunks.source == row.source]
        usage_t = rows[rows.kind == "usage"].t_s.max()
        last_content = rows[rows.kind.isin(CONTENT)].t_s.max()
        assert usage_t >= last_content
        assert row.e2e_s == pytest.approx(last_content - row.t_request_s)
