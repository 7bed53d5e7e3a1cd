"""Vectorize (v2) indexes with their metadata indexes, and Queues with their consumers, in the emulator.

Vectorize: ``{name, description, config: {dimensions, metric}, created_on, modified_on}``; at most 10
metadata indexes per index, property types ``string|number|boolean``. Dimensions and metric cannot
change after creation (the API has no update), which is why drift on them cannot be fixed in place.

Queues: ``{queue_id, queue_name, created_on, modified_on, producers, consumers, ...}``. A worker
consumer is ``{consumer_id, type: "worker", script, dead_letter_queue, settings}``; the API fills in
settings nobody set (``batch_size`` 10, ``max_retries`` 3, ``max_wait_time_ms`` 5000) — drift
detection must not mistake those for changes.
"""

from __future__ import annotations

from typing import Any

from .http import ApiError, ApiRequest, Paged, Router
from .state import ApiState

__all__ = ["CONSUMER_DEFAULTS", "register"]

METRICS = ("cosine", "euclidean", "dot-product")
METADATA_TYPES = ("string", "number", "boolean")
MAX_METADATA_INDEXES = 10
MAX_DIMENSIONS = 1536
CONSUMER_DEFAULTS: dict[str, Any] = {"batch_size": 10, "max_retries": 3, "max_wait_time_ms": 5000}


def _index(state: ApiState, req: ApiRequest) -> dict[str, Any]:
    found = state.account(req.params["account"])["vectorize"].get(req.params["index"])
    if found is None:
        raise ApiError(404, 3000, f"vectorize.index.not_found: {req.params['index']}")
    result: dict[str, Any] = found
    return result


def _public_index(index: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in index.items() if k != "metadata_indexes"}


def _register_vectorize(router: Router, state: ApiState) -> None:
    base = "/accounts/{account}/vectorize/v2/indexes"

    def create(req: ApiRequest) -> Any:
        body = req.json()
        name = str(body.get("name", ""))
        config = body.get("config") or {}
        indexes = state.account(req.params["account"])["vectorize"]
        if name in indexes:
            raise ApiError(409, 3002, f"vectorize.index.duplicate_name: an index named {name} already exists")
        dimensions, metric = config.get("dimensions"), config.get("metric")
        if not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_DIMENSIONS:
            raise ApiError(400, 3003, f"dimensions must be an integer between 1 and {MAX_DIMENSIONS}")
        if metric not in METRICS:
            raise ApiError(400, 3003, f"metric must be one of {', '.join(METRICS)}")
        now = state.now()
        indexes[name] = {
            "name": name,
            "description": str(body.get("description") or ""),
            "config": {"dimensions": dimensions, "metric": metric},
            "created_on": now,
            "modified_on": now,
            "metadata_indexes": [],
        }
        return _public_index(indexes[name])

    def delete(req: ApiRequest) -> Any:
        _index(state, req)
        del state.account(req.params["account"])["vectorize"][req.params["index"]]
        return None

    def info(req: ApiRequest) -> Any:
        index = _index(state, req)
        return {
            "dimensions": index["config"]["dimensions"],
            "vectorCount": 0,
            "processedUpToDatetime": index["modified_on"],
            "processedUpToMutation": None,
        }

    def md_create(req: ApiRequest) -> Any:
        index = _index(state, req)
        body = req.json()
        prop, kind = str(body.get("propertyName", "")), body.get("indexType")
        if kind not in METADATA_TYPES:
            raise ApiError(400, 3003, f"indexType must be one of {', '.join(METADATA_TYPES)}")
        existing = index["metadata_indexes"]
        if any(m["propertyName"] == prop for m in existing):
            raise ApiError(409, 3004, f"a metadata index for property {prop} already exists")
        if len(existing) >= MAX_METADATA_INDEXES:
            raise ApiError(400, 3005, f"an index can have at most {MAX_METADATA_INDEXES} metadata indexes")
        existing.append({"propertyName": prop, "indexType": kind})
        return {"mutationId": state.new_uuid("mutation")}

    def md_list(req: ApiRequest) -> Any:
        return {"metadataIndexes": [dict(m) for m in _index(state, req)["metadata_indexes"]]}

    def md_delete(req: ApiRequest) -> Any:
        index = _index(state, req)
        prop = str(req.json().get("propertyName", ""))
        before = len(index["metadata_indexes"])
        index["metadata_indexes"] = [m for m in index["metadata_indexes"] if m["propertyName"] != prop]
        if len(index["metadata_indexes"]) == before:
            raise ApiError(404, 3006, f"no metadata index for property {prop}")
        return {"mutationId": state.new_uuid("mutation")}

    router.add(
        "GET",
        base,
        lambda req: [_public_index(i) for i in state.account(req.params["account"])["vectorize"].values()],
    )
    router.add("POST", base, create)
    router.add("GET", base + "/{index}", lambda req: _public_index(_index(state, req)))
    router.add("DELETE", base + "/{index}", delete)
    router.add("GET", base + "/{index}/info", info)
    router.add("POST", base + "/{index}/metadata_index/create", md_create)
    router.add("GET", base + "/{index}/metadata_index/list", md_list)
    router.add("POST", base + "/{index}/metadata_index/delete", md_delete)


def _queue(state: ApiState, req: ApiRequest) -> dict[str, Any]:
    found = state.account(req.params["account"])["queues"].get(req.params["queue"])
    if found is None:
        raise ApiError(404, 11000, "workers.api.error.queue_not_found")
    result: dict[str, Any] = found
    return result


def _public_queue(queue: dict[str, Any]) -> dict[str, Any]:
    return {
        **queue,
        "consumers_total_count": len(queue["consumers"]),
        "producers_total_count": len(queue["producers"]),
    }


def _consumer_from(state: ApiState, body: dict[str, Any], consumer_id: str | None = None) -> dict[str, Any]:
    settings = {k: v for k, v in (body.get("settings") or {}).items() if v is not None}
    consumer: dict[str, Any] = {
        "consumer_id": consumer_id or state.new_hex("consumer"),
        "type": body.get("type", "worker"),
        "settings": {**CONSUMER_DEFAULTS, **settings},
        "created_on": state.now(),
    }
    if body.get("dead_letter_queue"):
        consumer["dead_letter_queue"] = body["dead_letter_queue"]
    script = body.get("script_name") or body.get("script")
    if consumer["type"] == "worker":
        if not script:
            raise ApiError(400, 11004, "a worker consumer needs script_name")
        consumer["script"] = script
    return consumer


def _register_queues(router: Router, state: ApiState) -> None:
    base = "/accounts/{account}/queues"

    def list_queues(req: ApiRequest) -> Any:
        names = req.query.get("name")
        queues = state.account(req.params["account"])["queues"].values()
        return Paged([_public_queue(q) for q in queues if not names or q["queue_name"] in names])

    def create(req: ApiRequest) -> Any:
        name = str(req.json().get("queue_name", ""))
        queues = state.account(req.params["account"])["queues"]
        if any(q["queue_name"] == name for q in queues.values()):
            raise ApiError(409, 11009, f"A queue with name {name} already exists")
        if not name or len(name) > 63:
            raise ApiError(400, 11003, "queue_name must be 1-63 characters")
        queue_id = state.new_hex("queue")
        now = state.now()
        queues[queue_id] = {
            "queue_id": queue_id,
            "queue_name": name,
            "created_on": now,
            "modified_on": now,
            "producers": [],
            "consumers": [],
            "settings": {"delivery_delay": 0, "message_retention_period": 345600},
        }
        return _public_queue(queues[queue_id])

    def delete(req: ApiRequest) -> Any:
        _queue(state, req)
        del state.account(req.params["account"])["queues"][req.params["queue"]]
        return None

    def add_consumer(req: ApiRequest) -> Any:
        queue = _queue(state, req)
        consumer = _consumer_from(state, req.json())
        if any(c.get("script") == consumer.get("script") for c in queue["consumers"]):
            raise ApiError(409, 11005, "this worker is already a consumer of the queue")
        _check_dlq(state, req.params["account"], consumer)
        queue["consumers"].append(consumer)
        return dict(consumer)

    def put_consumer(req: ApiRequest) -> Any:
        queue = _queue(state, req)
        for i, existing in enumerate(queue["consumers"]):
            if existing["consumer_id"] == req.params["consumer"]:
                consumer = _consumer_from(state, req.json(), existing["consumer_id"])
                _check_dlq(state, req.params["account"], consumer)
                queue["consumers"][i] = consumer
                return dict(consumer)
        raise ApiError(404, 11006, "consumer not found")

    def delete_consumer(req: ApiRequest) -> Any:
        queue = _queue(state, req)
        queue["consumers"] = [c for c in queue["consumers"] if c["consumer_id"] != req.params["consumer"]]
        return None

    router.add("GET", base, list_queues)
    router.add("POST", base, create)
    router.add("GET", base + "/{queue}", lambda req: _public_queue(_queue(state, req)))
    router.add("DELETE", base + "/{queue}", delete)
    router.add("GET", base + "/{queue}/consumers", lambda req: Paged(list(_queue(state, req)["consumers"])))
    router.add("POST", base + "/{queue}/consumers", add_consumer)
    router.add("PUT", base + "/{queue}/consumers/{consumer}", put_consumer)
    router.add("DELETE", base + "/{queue}/consumers/{consumer}", delete_consumer)


def _check_dlq(state: ApiState, account: str, consumer: dict[str, Any]) -> None:
    dlq = consumer.get("dead_letter_queue")
    if dlq and not any(q["queue_name"] == dlq for q in state.account(account)["queues"].values()):
        raise ApiError(400, 11007, f"dead letter queue {dlq} does not exist")


def register(router: Router, state: ApiState) -> None:
    _register_vectorize(router, state)
    _register_queues(router, state)
