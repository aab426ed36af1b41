"""The benchmark's layer table: each row's p50 and what it adds to the row below."""

from bench.layers import Layers
from bench.serving import layer_lines
from bench.wrk import LoadResult


def result(p50: float) -> LoadResult:
    return LoadResult(p50, p50 * 1.5, 1000 / p50, 0)


def test_each_layer_shows_what_it_adds_to_the_one_below():
    layers = Layers(model=result(0.6), gateway_work=result(0.65), flask=result(1.0))

    lines = layer_lines(layers, over_http=result(1.2))

    added = [line.rsplit("|", 2)[-2].strip() for line in lines[2:]]
    assert added == ["+0.60 ms", "+0.05 ms", "+0.35 ms", "+0.20 ms"]
    assert [line.split("|")[2].strip() for line in lines[2:]] == ["0.60", "0.65", "1.00", "1.20"]
