"""The node-local copy of the champion: served only whole, matching its digest, of trusted
types and answering the challenge; otherwise not at all (the gateway waits for MLflow)."""

import json
import logging
from pathlib import Path

import pytest
import skops.io
from sklearn.preprocessing import FunctionTransformer

from services.gateway.champion import ChampionCache, LoadedModel
from services.gateway.champion_copy import RECORD, ChampionCopy
from services.gateway.registry import prove

GOLDEN = Path(__file__).parents[2] / "golden"
SKOPS = (GOLDEN / "model.skops").read_bytes()


def _saved(folder: Path, version: str = "7", skops_file: bytes = SKOPS) -> ChampionCopy:
    copy = ChampionCopy(folder)
    copy.save(LoadedModel(version, pipeline=None, info={"candidate": "lgbm_all"}), skops_file)
    return copy


def test_a_saved_champion_is_served_again_with_its_version_and_description(tmp_path: Path):
    loaded = _saved(tmp_path).load(prove)
    assert loaded is not None
    assert (loaded.version, loaded.info) == ("7", {"candidate": "lgbm_all"})
    prove(loaded.pipeline)


def test_a_newer_champion_replaces_the_older_file(tmp_path: Path):
    _saved(tmp_path, "7")
    copy = _saved(tmp_path, "8", (GOLDEN / "model_blend.skops").read_bytes())
    assert len(list(tmp_path.glob("*.skops"))) == 1
    assert copy.load(prove).version == "8"


@pytest.mark.parametrize(
    "damage",
    ["flipped-byte", "no-record", "torn-record", "file-gone", "untrusted", "wrong-answer"],
)
def test_a_copy_that_is_not_whole_or_not_trusted_is_not_served(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
):
    copy = _saved(tmp_path)
    [model_file] = tmp_path.glob("*.skops")
    check = prove
    if damage == "flipped-byte":
        data = bytearray(model_file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        model_file.write_bytes(bytes(data))
    elif damage == "no-record":
        (tmp_path / RECORD).unlink()
    elif damage == "torn-record":
        (tmp_path / RECORD).write_text(json.dumps({"version": "7"})[:9])
    elif damage == "file-gone":
        model_file.unlink()
    elif damage == "untrusted":  # a skops file of a type this code does not trust
        copy = _saved(tmp_path, "9", _untrusted_skops())
    elif damage == "wrong-answer":

        def check(pipeline: object) -> None:
            raise ValueError("the challenge's example got no answer")

    with caplog.at_level(logging.WARNING):
        assert copy.load(check) is None
    if damage not in ("no-record", "torn-record"):  # nothing to serve is no news
        assert "not served" in caplog.text


def _untrusted_skops() -> bytes:
    return skops.io.dumps(FunctionTransformer(print))


class _Source:
    """MLflow away: no alias to read; a saved copy of version 7."""

    def __init__(self, copy: ChampionCopy) -> None:
        self.copy = copy

    def alias_version(self) -> str:
        raise ConnectionError("MLflow does not answer")

    def load(self, version: str) -> LoadedModel:
        raise AssertionError("nothing to load while MLflow is away")

    def saved(self) -> LoadedModel | None:
        return self.copy.load(prove)


def test_the_cache_serves_the_copy_while_the_registry_is_away(tmp_path: Path):
    cache = ChampionCache(_Source(_saved(tmp_path)), poll_seconds=30)
    cache.serve_saved()
    assert cache.current is not None and cache.current.version == "7"
    assert cache.refresh() is False  # the registry away: the copy goes on serving
    assert cache.current.version == "7" and "MLflow does not answer" in cache.last_error
