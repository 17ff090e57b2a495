"""The line decoder shared by the SSE and NDJSON paths."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from llmgrid_nb.lines import LineDecoder


def lines_of(chunks: list[bytes]) -> list[str]:
    dec = LineDecoder()
    out = []
    for c in chunks:
        out.extend(dec.decode(c))
    return out + dec.flush()


def test_last_line_without_newline_comes_out_at_flush() -> None:
    dec = LineDecoder()
    assert dec.decode(b'{"a": 1}\n{"b"') == ['{"a": 1}']
    assert dec.flush() == ['{"b"']


def test_a_line_split_over_many_reads_is_joined() -> None:
    assert lines_of([b"ab", b"cd", b"ef\ngh"]) == ["abcdef", "gh"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=30), max_size=10),
       st.lists(st.integers(min_value=0, max_value=400), max_size=15))
def test_ndjson_lines_survive_any_split(lines: list[str], cuts: list[int]) -> None:
    raw = "".join(line + "\n" for line in lines).encode()
    points = sorted({c for c in cuts if c <= len(raw)})
    chunks = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)])]
    assert lines_of(chunks) == lines
