"""``schema suggest`` on a collection it has never seen, then the walk the docs give:
``schema check`` accepts the file, a sync run with it unedited writes every document
as a typed row with no dead letter, and ``--update`` adds a field that appears later
(issue 25). Against the emulators."""

from __future__ import annotations

import datetime
import json
import random
from pathlib import Path
from typing import Any

from google.cloud.firestore_v1 import GeoPoint

from pipelines import firestore_to_bq
from pipelines.convert.table_spec import TableSpec
from pipelines.services import bigquery as bq
from pipelines.services import firestore as fs
from pipelines.services import sampling
from tests.support.sync_helpers import PROJECT, seed, sync, table_rows, unique_dataset

UTC = datetime.UTC
USERS = 30
RIDES_PER_USER = 3


def _ride(rng: random.Random, day: datetime.date) -> dict[str, Any]:
    at = datetime.datetime.combine(day, datetime.time(rng.randrange(6, 20)), UTC)
    millis = int(at.timestamp() * 1000)
    ride: dict[str, Any] = {
        "startedAt": millis,
        "updatedAt": millis + rng.randrange(1, 3_600_000),
        "bikeType": rng.choice(["road", "gravel", "city"]),
        "distanceKm": round(rng.uniform(2, 80), 2),
        "stats": {"heartRateAvg": rng.randrange(100, 170), "maxHr": rng.randrange(170, 200),
                  "elevationGainM": rng.randrange(0, 900)},
        "laps": [{"lapNo": i + 1, "durationS": rng.randrange(200, 900)}
                 for i in range(rng.randrange(1, 4))],
        "startPoint": GeoPoint(round(rng.uniform(-60, 60), 4), round(rng.uniform(-170, 170), 4)),
        "riderEmail": f"rider{rng.randrange(1000)}@example.com",
    }  # fmt: skip
    if rng.random() < 0.3:
        ride["commute"] = rng.random() < 0.5
    return ride


def _seed_rides(db) -> dict[str, dict[str, Any]]:
    rng = random.Random(25)
    yesterday = datetime.datetime.now(UTC).date() - datetime.timedelta(days=1)
    owners = [f"{rng.getrandbits(40):010x}" for _ in range(USERS)]
    rides = {
        f"users/{owner}/rides/r{i}_{j}":
            _ride(rng, yesterday - datetime.timedelta(days=rng.randrange(0, 5)))
        for i, owner in enumerate(owners) for j in range(RIDES_PER_USER)
    }  # fmt: skip
    seed(db, rides)
    return rides


def test_suggest_check_and_sync_a_never_seen_collection(
    firestore_db, bq_client, tmp_path: Path, capsys, monkeypatch
) -> None:
    rides = _seed_rides(firestore_db)
    folder = tmp_path / "schemas"
    folder.mkdir()
    out = folder / "rides.json"
    argv = ["schema", "suggest", "--project", PROJECT, "--path", "users/{user_id}/rides",
            "--sample", "40", "--seed", "3", "--out", str(out)]  # fmt: skip
    assert firestore_to_bq.main(argv) == 0
    err = capsys.readouterr().err
    assert f"read 40 documents of {len(rides)} in users/{{user_id}}/rides, in short pages " \
           "from " in err and " random points spread over the whole key range" in err
    for words in ("-> started_at TIMESTAMP from epoch_millis", "-> stats RECORD",
                  "-> laps REPEATED RECORD", "-> start_point GEOGRAPHY",
                  "partition column: started_at", "change field: updated_at",
                  "personal data? riderEmail", "commute: boolean"):  # fmt: skip
        assert words in err, words
    schema = json.loads(out.read_text())
    assert schema["field_map"]["stats.heart_rate_avg"] == "heartRateAvg"

    assert firestore_to_bq.main(["schema", "check", "--schemas_dir", str(folder)]) == 0
    assert capsys.readouterr().out.startswith(
        "rides: 11 columns (+5 sync columns), from users/{user_id}/rides, partitioned by "
        "DAY(started_at) (TIMESTAMP from epoch_millis), clustered by user_id, change field "
        "updated_at"
    )

    monkeypatch.setenv("F2BQ_HASH_KEY", "test-only-key")  # riderEmail is hashed
    dataset = unique_dataset("suggested")
    summary = sync(dataset, "--schemas_dir", str(folder), "--mode", "full")
    (table,) = summary.tables
    assert (table.read, table.rows, table.dead_lettered) == (len(rides), len(rides), 0)
    target = bq.table_sql(bq_client.project, dataset, "rides")
    sql = ("SELECT _document_path, started_at, stats, laps, ST_ASTEXT(start_point) AS point, "
           f"rider_email, extra FROM {target}")  # fmt: skip
    rows = {r["_document_path"]: dict(r) for r in bq.run_query(bq_client, sql).result()}
    assert set(rows) == set(rides)
    for path, ride in rides.items():
        row = rows[path]
        assert row["started_at"] == datetime.datetime.fromtimestamp(ride["startedAt"] / 1000, UTC)
        assert row["stats"]["heart_rate_avg"] == ride["stats"]["heartRateAvg"]
        assert [lap["lap_no"] for lap in row["laps"]] == [lap["lapNo"] for lap in ride["laps"]]
        assert row["point"].startswith("POINT")
        assert row["rider_email"] != ride["riderEmail"] and len(row["rider_email"]) == 64
        assert row["extra"] is None  # every field went to a column
    assert table_rows(bq_client, dataset, "_dead_letters") == []

    # A field that appears later: --update adds it and changes nothing else.
    before = out.read_text()
    firestore_db.document(next(iter(rides))).update({"gearRatio": 2.5})
    argv = ["schema", "suggest", "--project", PROJECT, "--path", "users/{user_id}/rides",
            "--update", str(out)]  # fmt: skip
    assert firestore_to_bq.main(argv) == 0
    assert "added gear_ratio FLOAT64 (from gearRatio)" in capsys.readouterr().err
    after = json.loads(out.read_text())
    old = json.loads(before)
    assert after["fields"][: len(old["fields"])] == old["fields"]
    assert [f["name"] for f in after["fields"][len(old["fields"]):]] == ["gear_ratio"]
    assert firestore_to_bq.main(["schema", "check", "--schemas_dir", str(folder)]) == 0


def test_the_sample_spreads_over_the_owners_not_the_first_documents(firestore_db) -> None:
    rides = _seed_rides(firestore_db)
    spec = TableSpec(name="rides", collection="rides", layout="per_user", id_column="id",
                     partition_column="", columns=())  # fmt: skip
    client = fs.make_client(PROJECT)
    read_time = datetime.datetime.now(UTC)
    found = sampling.sample(client, spec, 15, read_time, fs.read_retry(60), seed=1)
    assert found.total == len(rides) and found.points >= 15
    assert len(found.documents) == 15
    owners = {doc.segments[1] for doc in found.documents}
    first = sorted(rides)[:15]
    assert len(owners) >= 8, owners  # the first 15 by name are 5 owners' rides
    assert sorted(d.path for d in found.documents) != first
    everything = sampling.sample(client, spec, 500, read_time, fs.read_retry(60))
    assert (len(everything.documents), everything.points) == (len(rides), 0)
