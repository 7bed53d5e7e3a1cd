"""Contract suite for the Workers Analytics Engine binding (edgerag.ports.AnalyticsEngineDataset).

Locally the backend is :class:`edgerag_local.analytics.LocalAnalyticsEngineDataset`. Inside workerd
the same assertions would run in a test worker with an ``[[analytics_engine_datasets]]`` binding,
reading its points back through the SQL API a few seconds later. Miniflare's local Analytics Engine
accepts every point without checking the limits, so it is not a backend for this suite: the limits
asserted here are workerd's (``analytics-engine-impl.h``) and Cloudflare's limits page.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from edgerag.ports import AnalyticsEngineDataset
from edgerag_local.analytics import (
    AnalyticsEngineError,
    AnalyticsEngineLimits,
    AnalyticsStore,
    LocalAnalyticsEngineDataset,
)
from edgerag_local.core.clock import ManualClock
from edgerag_local.core.errors import BindingError

from tests.contract.conftest import LOCAL_BACKENDS

NOW = 1_700_000_000.0


@dataclass
class Harness:
    store: AnalyticsStore
    dataset: LocalAnalyticsEngineDataset


# Local only: Miniflare's Analytics Engine dataset is a no-op (writeDataPoint accepts anything, keeps none).
@pytest.fixture(params=LOCAL_BACKENDS)
def ae(request: pytest.FixtureRequest) -> Harness:
    store = AnalyticsStore("edgerag_metrics", clock=ManualClock(NOW))
    return Harness(store, LocalAnalyticsEngineDataset(store))


def test_implements_the_port_returns_nothing_and_keeps_the_point(ae: Harness) -> None:
    assert isinstance(ae.dataset, AnalyticsEngineDataset)
    written = ae.dataset.writeDataPoint(
        {"blobs": ["gateway", None, b"\x00raw"], "doubles": [1, 2.5], "indexes": ["t"]}
    )
    assert written is None
    (point,) = ae.store.points()
    assert point.as_dict() == {
        "blobs": ["gateway", None, b"\x00raw"],
        "doubles": [1.0, 2.5],
        "indexes": ["t"],
    }
    assert point.timestamp == NOW and point.dataset == "edgerag_metrics"


def test_every_field_is_optional(ae: Harness) -> None:
    ae.dataset.writeDataPoint()
    ae.dataset.writeDataPoint({})
    ae.dataset.writeDataPoint({"doubles": [3]})
    assert [p.as_dict() for p in ae.store.points()] == [
        {"blobs": [], "doubles": [], "indexes": []},
        {"blobs": [], "doubles": [], "indexes": []},
        {"blobs": [], "doubles": [3.0], "indexes": []},
    ]


def test_the_maximum_shape_is_accepted(ae: Harness) -> None:
    ae.dataset.writeDataPoint({"blobs": ["b"] * 20, "doubles": [0.5] * 20, "indexes": ["i" * 96]})
    assert ae.store.written == 1


@pytest.mark.parametrize(
    ("point", "message"),
    [
        ({"blobs": ["b"] * 21}, "Maximum of 20 blobs supported."),
        ({"doubles": [1.0] * 21}, "Maximum of 20 doubles supported."),
        ({"indexes": ["a", "b"]}, "Maximum of 1 indexes supported."),
        ({"indexes": ["i" * 97]}, "Size of indexes[0] exceeds 96 bytes"),
        ({"indexes": ["é" * 49]}, "Size of indexes[0] exceeds 96 bytes"),  # bytes, not characters
        ({"blobs": ["x" * 8192, "y" * 8193]}, "Cumulative size of blobs exceeds 16384 bytes"),
        ({"blobs": [1]}, "blobs must be strings"),
        ({"doubles": ["1"]}, "doubles must be numbers"),
        ({"doubles": [True]}, "doubles must be numbers"),
        ({"indexes": [7]}, "indexes must be strings"),
        ({"blobs": "not a list"}, "blobs must be an array"),
    ],
)
def test_a_point_over_a_limit_is_refused_with_a_type_error_naming_it(
    ae: Harness, point: dict[str, object], message: str
) -> None:
    with pytest.raises(AnalyticsEngineError) as caught:
        ae.dataset.writeDataPoint(point)
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, BindingError)
    assert caught.value.message.startswith("writeDataPoint(): ") and message in caught.value.message
    assert ae.store.points() == []  # nothing half-written


def test_limits_can_be_lowered_for_tests() -> None:
    store = AnalyticsStore("d")
    dataset = LocalAnalyticsEngineDataset(store, AnalyticsEngineLimits(max_blob_bytes=5120, max_blobs=2))
    dataset.writeDataPoint({"blobs": ["a", "b"]})
    with pytest.raises(AnalyticsEngineError, match="Maximum of 2 blobs"):
        dataset.writeDataPoint({"blobs": ["a", "b", "c"]})
    with pytest.raises(AnalyticsEngineError, match="5120 bytes"):
        dataset.writeDataPoint({"blobs": ["x" * 5121]})


def test_workers_bound_to_one_dataset_share_its_points_and_subscribers_see_each(ae: Harness) -> None:
    seen: list[tuple[str | bytes | None, ...]] = []
    ae.store.subscribe(lambda point: seen.append(point.blobs))
    other = LocalAnalyticsEngineDataset(ae.store)
    ae.dataset.writeDataPoint({"blobs": ["gateway"]})
    other.writeDataPoint({"blobs": ["ingest"]})
    assert seen == [("gateway",), ("ingest",)] and ae.store.written == 2


def test_the_store_keeps_only_the_latest_points_but_counts_all() -> None:
    store = AnalyticsStore("d", keep=3)
    dataset = LocalAnalyticsEngineDataset(store)
    for i in range(5):
        dataset.writeDataPoint({"doubles": [i]})
    assert [p.doubles for p in store.points()] == [(2.0,), (3.0,), (4.0,)] and store.written == 5
