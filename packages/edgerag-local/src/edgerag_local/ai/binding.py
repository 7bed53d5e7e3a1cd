"""``LocalAi``: the local ``env.AI`` binding (implements :class:`edgerag.ports.Ai`).

``await ai.run(model, inputs)`` looks ``model`` up in a :class:`.registry.ModelRegistry` and runs it;
results are :class:`edgerag.jsdict.AttrDict` like the wrapped SDK's ``JsDict``. Errors are
:class:`edgerag_local.ai.errors.AiError` worded like the binding's (``AiError: 5006: ...`` for bad input,
``AiError: 5007: No such model ...`` for an unknown id, with the served ids appended).

Options (the binding's third argument, as a trailing dict or keywords): ``gateway`` and ``extraHeaders``
are accepted and ignored, since there is no AI Gateway locally; anything else (``returnRawResponse``,
``websocket``, a typo) is rejected, because the local runtime cannot honour it.

``await ai.models()`` answers like the binding's model search with the locally served models only.

The models are synchronous CPU work. The static ones (WordLlama, the extractive responder) run inline:
a call for 100 texts takes milliseconds, and running inline keeps timings deterministic. A model that
sets ``offload = True`` (the ONNX transformers of :mod:`.bert_onnx`: a call for 50 chunks takes tens of
seconds on two cores) runs in a worker thread (``asyncio.to_thread``; onnxruntime releases the GIL), so
the host's event loop keeps serving HTTP and queues while it computes, as the remote service would. The
result is the same either way: each output is a function of its inputs alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from edgerag.jsdict import AttrDict

from edgerag_local.core.options import merge_options

from .registry import ModelRegistry, default_registry

__all__ = ["LocalAi"]

_RUN_OPTIONS = ("gateway", "extraHeaders")


class LocalAi:
    """The Workers AI binding, served by models that ship inside PyPI wheels."""

    def __init__(self, registry: ModelRegistry | None = None) -> None:
        self.registry = registry if registry is not None else default_registry()

    async def run(
        self,
        model: str,
        inputs: Mapping[str, Any],
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        merge_options(options, kwargs, allowed=_RUN_OPTIONS, where="Ai.run")
        impl = self.registry.get(model)
        if getattr(impl, "offload", False):
            return await asyncio.to_thread(impl.run, inputs)
        return impl.run(inputs)

    async def models(self, params: Mapping[str, Any] | None = None) -> list[AttrDict]:
        """The served models in the shape of the binding's model search (``name`` is the model id).

        ``params`` may filter by ``task`` (exact task name) or ``search`` (substring of id or
        description), as the real search does; other search parameters are accepted and ignored.
        """
        params = params or {}
        task = params.get("task")
        search = str(params.get("search") or "").lower()
        found: list[AttrDict] = []
        for info in self.registry.models():
            if task and info.task != task:
                continue
            if search and search not in info.id.lower() and search not in info.description.lower():
                continue
            details = self.registry.get(info.id).describe()
            properties = [
                {"property_id": key, "value": str(value)}
                for key, value in details.items()
                if key not in ("id", "task")
            ]
            found.append(
                AttrDict(
                    {
                        "id": info.id,
                        "source": 0,
                        "name": info.id,
                        "description": info.description,
                        "task": {"name": info.task, "description": ""},
                        "tags": ["local"],
                        "properties": properties,
                    }
                )
            )
        return found
