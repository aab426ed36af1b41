from pathlib import Path

import pytest

from services.gateway.server_paths import without_server_paths

PROJECT = Path("/srv/app")


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        ("/srv/app/data/processed/run-1.parquet", "data/processed/run-1.parquet"),
        ("cannot read /tmp/upload/x-1.csv: bad gzip", "cannot read .../x-1.csv: bad gzip"),
        ("not found: '/var/lib/pipeline/staged/r/lgbm.pkl'", "not found: '.../lgbm.pkl'"),
        ("http://127.0.0.1:5000/api/2.0/mlflow", "http://127.0.0.1:5000/api/2.0/mlflow"),
        ("data/raw/listings.csv.gz", "data/raw/listings.csv.gz"),
        ("1/2 of the rows; a / b", "1/2 of the rows; a / b"),
        ("models:/m-0a1b/", "models:/m-0a1b/"),
    ],
)  # fmt: skip
def test_absolute_paths_are_hidden_and_nothing_else_changes(shown: str, expected: str):
    assert without_server_paths(shown, PROJECT) == expected


def test_a_whole_run_record_is_walked():
    run = {
        "stages": {"prep": {"processed_path": "/srv/app/data/processed/a.parquet", "rows": 3}},
        "candidates": {"rf": {"error": "OSError: [Errno 28] No space left: '/mnt/x/y/z.pkl'"}},
        "tags": ["/etc/secret/thing", None, 1.5],
    }
    assert without_server_paths(run, PROJECT) == {
        "stages": {"prep": {"processed_path": "data/processed/a.parquet", "rows": 3}},
        "candidates": {"rf": {"error": "OSError: [Errno 28] No space left: '.../z.pkl'"}},
        "tags": [".../thing", None, 1.5],
    }
