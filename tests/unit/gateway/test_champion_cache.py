"""The champion cache's description of the served version stays complete."""

from services.gateway.champion import ChampionCache, LoadedModel


class _Source:
    """A registry whose version 4 is tagged with its decision only after the first load (as
    select moves the alias first and tags the decision just after)."""

    def __init__(self) -> None:
        self.tagged = False

    def champion_version(self) -> str:
        return "4"

    def describe(self, version: str) -> dict:
        return {
            "version": version,
            "promoted_at": "2026-11-30T12:00:00+00:00" if self.tagged else None,
        }

    def load(self, version: str) -> LoadedModel:
        return LoadedModel(version, pipeline=None, info=self.describe(version))


def test_a_version_loaded_before_its_decision_was_tagged_is_described_again():
    source = _Source()
    cache = ChampionCache(source, poll_seconds=30)
    assert cache.refresh() is True
    assert cache.current.info["promoted_at"] is None
    source.tagged = True
    assert cache.refresh() is False  # the same version: no swap, but a fresh description
    assert cache.current.info["promoted_at"] == "2026-11-30T12:00:00+00:00"
