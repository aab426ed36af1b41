"""Raw data fuzz: every broken file fails prep with a reason, or loses only the bad rows,
and never leaves a half-written dataset behind."""

import pytest

from services.workers.prep import clean_file, clean_once
from shared.errors import DataError
from tests.unit.listings import raw_frame
from tests.unit.memory_datasets import MemoryDatasets
from tests.unit.raw_fuzz import BROKEN_FILES


@pytest.mark.parametrize("kind", list(BROKEN_FILES))
def test_broken_files_fail_prep_with_a_reason_and_log_nothing(tmp_path, kind):
    write, suffix, message = BROKEN_FILES[kind]
    raw = tmp_path / f"listings{suffix}"
    write(raw)
    datasets = MemoryDatasets()
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        clean_once(datasets, raw, None, {})
    assert datasets.logged == {}


def test_odd_prices_and_duplicate_ids_drop_only_their_rows(tmp_path):
    raw = tmp_path / "listings.csv"
    rows = [{}, {"price": "$"}, {"price": "-$5.00"}, {"price": "$1,000,000.00"}, {}]
    frame = raw_frame(*rows)
    frame.loc[4, "id"] = frame.loc[0, "id"]  # the same listing twice in one dump
    frame.to_csv(raw, index=False)

    clean, report = clean_file(raw)

    assert report.dropped == {"unparseable_price": 2, "duplicate_id": 1}
    assert report.rows_out == 2
    assert len(clean) == 2
    # A thousands separator is read, not cut at: a million-dollar night is Lux, not $1.
    assert report.per_category == {"Low": 0, "Mid": 0, "High": 1, "Lux": 1}
