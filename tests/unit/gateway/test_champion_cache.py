"""The champion cache's description of the served version stays complete."""

from services.gateway.champion import ChampionCache, LoadedModel


class _Source:
    """A registry whose version 4 is tagged with its decision only after the first load (as
    select moves the alias first and tags the decision just after)."""

    def __init__(self) -> None:
        self.tagged = False

    def alias_version(self) -> str:
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


class _Alias:
    """An alias the test points at a version or removes."""

    def __init__(self) -> None:
        self.version: str | None = "5"

    def alias_version(self) -> str | None:
        return self.version

    def load(self, version: str) -> LoadedModel:
        return LoadedModel(version, pipeline=None)


def test_a_challenger_is_dropped_when_its_alias_is_removed_and_a_champion_is_not():
    challenger_alias, champion_alias = _Alias(), _Alias()
    challenger = ChampionCache(challenger_alias, poll_seconds=30, drop_when_unset=True)
    champion = ChampionCache(champion_alias, poll_seconds=30)
    assert challenger.refresh() and champion.refresh()
    challenger_alias.version = champion_alias.version = None
    assert challenger.refresh() is True
    assert challenger.current is None
    assert champion.refresh() is False  # predictions must not fail: it keeps serving
    assert champion.current.version == "5"
    challenger_alias.version = "6"
    assert challenger.refresh() is True
    assert challenger.current.version == "6"


def test_the_alias_is_looked_at_often_only_while_no_champion_is_served():
    champion = ChampionCache(_Alias(), poll_seconds=30)
    challenger = ChampionCache(_Alias(), poll_seconds=30, drop_when_unset=True)
    assert champion.next_poll_seconds() == 0.5  # no champion: predictions are failing
    assert challenger.next_poll_seconds() == 30  # no challenger: nothing is failing
    champion.refresh()
    assert champion.next_poll_seconds() == 30
