"""Test-only changes made behind the deploy tools' back: the drift a real account accumulates.

Each method changes the emulator's state the way a person would through the dashboard or the API:
a var edited, a binding re-pointed or removed, a compatibility date changed, a queue consumer's
settings tuned by hand, a row lost from ``d1_migrations`` (with the schema change undone), a metadata
index deleted. Worker edits create a new version and deploy it, as the dashboard does; they leave the
script's ``last_deployed_from`` alone, so the next ``wrangler deploy`` takes its ordinary path.

``fail_uploads`` makes every upload of a script answer 500 (a tenant whose deploy breaks midway).

Use through ``CloudflareApiEmulator.inject``; every call is made under the emulator's lock.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from edgerag_local.d1.sql import split_statements

from .scripts import active_version, deploy_version, new_version
from .state import ApiState

__all__ = ["Injector"]


class Injector:
    def __init__(self, state: ApiState, lock: threading.RLock) -> None:
        self._state = state
        self._lock = lock

    def _script(self, account: str, script: str) -> dict[str, Any]:
        found = self._state.account(account)["scripts"].get(script)
        if found is None:
            raise KeyError(f"no script {script!r} in account {account}")
        result: dict[str, Any] = found
        return result

    def _edit(self, account: str, script: str, change: Any) -> None:
        with self._lock:
            target = self._script(account, script)
            current = active_version(target)
            meta = copy.deepcopy(current["metadata_in"])
            meta.pop("annotations", None)  # a dashboard edit carries no wrangler tag or message
            change(meta)
            version = new_version(self._state, target, meta, dict(current["modules"]), "dash")
            version["etag"] = current["etag"]
            deploy_version(self._state, target, version["id"], "dash")
            self._state.save()

    def set_var(self, account: str, script: str, name: str, value: str) -> None:
        def change(meta: dict[str, Any]) -> None:
            bindings = [b for b in meta["bindings"] if b["name"] != name]
            meta["bindings"] = [*bindings, {"type": "plain_text", "name": name, "text": value}]

        self._edit(account, script, change)

    def set_binding(self, account: str, script: str, name: str, **fields: Any) -> None:
        """Re-point (or add) binding ``name``; ``fields`` replace its fields (``type`` included)."""

        def change(meta: dict[str, Any]) -> None:
            old = next((b for b in meta["bindings"] if b["name"] == name), {"name": name})
            meta["bindings"] = [b for b in meta["bindings"] if b["name"] != name] + [{**old, **fields}]

        self._edit(account, script, change)

    def remove_binding(self, account: str, script: str, name: str) -> None:
        def change(meta: dict[str, Any]) -> None:
            meta["bindings"] = [b for b in meta["bindings"] if b["name"] != name]

        self._edit(account, script, change)

    def set_compatibility_date(self, account: str, script: str, date: str) -> None:
        def change(meta: dict[str, Any]) -> None:
            meta["compatibility_date"] = date

        self._edit(account, script, change)

    def set_consumer(self, account: str, queue_name: str, script: str, **changes: Any) -> None:
        """Change a worker consumer: ``settings`` keys (``max_retries=9``) or ``dead_letter_queue``."""
        with self._lock:
            queue = next(
                (q for q in self._state.account(account)["queues"].values() if q["queue_name"] == queue_name),
                None,
            )
            if queue is None:
                raise KeyError(f"no queue {queue_name!r}")
            consumer = next((c for c in queue["consumers"] if c.get("script") == script), None)
            if consumer is None:
                raise KeyError(f"{script!r} does not consume {queue_name!r}")
            for key, value in changes.items():
                if key == "dead_letter_queue":
                    if value is None:
                        consumer.pop("dead_letter_queue", None)
                    else:
                        consumer["dead_letter_queue"] = value
                else:
                    consumer["settings"][key] = value
            self._state.save()

    def drop_migration(
        self, account: str, database_name: str, migration: str, undo_sql: str | None = None
    ) -> None:
        """Forget ``migration`` in ``d1_migrations`` and run ``undo_sql`` (the schema change reverted)."""
        with self._lock:
            db = next(
                (d for d in self._state.account(account)["d1"].values() if d["name"] == database_name), None
            )
            if db is None:
                raise KeyError(f"no D1 database {database_name!r}")
            engine = self._state.d1_engine(db["uuid"])
            found = engine.run([("SELECT 1 FROM d1_migrations WHERE name = ?", [migration])])[0]
            if not found.rows:
                raise KeyError(f"migration {migration!r} is not recorded in {database_name}")
            queries: list[tuple[str, list[Any]]] = [("DELETE FROM d1_migrations WHERE name = ?", [migration])]
            engine.run(queries + [(statement, []) for statement in split_statements(undo_sql or "")])

    def drop_metadata_index(self, account: str, index: str, prop: str) -> None:
        with self._lock:
            found = self._state.account(account)["vectorize"].get(index)
            if found is None:
                raise KeyError(f"no Vectorize index {index!r}")
            found["metadata_indexes"] = [m for m in found["metadata_indexes"] if m["propertyName"] != prop]
            self._state.save()

    def fail_uploads(self, account: str, script: str, fail: bool = True) -> None:
        with self._lock:
            names: list[str] = self._state.account(account)["fail_uploads"]
            if fail and script not in names:
                names.append(script)
            elif not fail and script in names:
                names.remove(script)
            self._state.save()
