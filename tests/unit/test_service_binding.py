"""Service bindings: RPC serialisation round-trip and fetch routing between hosted workers."""

import datetime as dt
from typing import Any, ClassVar

import pytest
from edgerag.jsdict import AttrDict
from edgerag_local.core.errors import RpcSerializationError
from edgerag_local.sdk import ExecutionContext, Request, Response, WorkerEntrypoint
from edgerag_local.service import LocalFetcher, rpc_clone
from edgerag_local.service.errors import ServiceBindingError


class Target(WorkerEntrypoint):
    calls: ClassVar[list[tuple[str, Any]]] = []

    async def fetch(self, request: Request) -> Response:
        return Response.json(
            {
                "method": request.method,
                "url": request.url,
                "body": await request.text(),
                "env": self.env["label"],
            }
        )

    async def echo(self, value: Any) -> Any:
        Target.calls.append(("echo", value))
        return value

    async def leak_tuple(self) -> Any:
        return (1, 2)

    def sync_add(self, a: int, b: int) -> int:
        return a + b

    async def _private(self) -> None:
        raise AssertionError("must not be reachable")


class Host:
    name = "target-worker"

    def entrypoint(self, name: str | None) -> type[Any]:
        assert name is None
        return Target

    def new_instance(self, cls: type[Any], ctx: ExecutionContext) -> Any:
        return cls(ctx, {"label": "target-env"})


@pytest.fixture
def binding() -> LocalFetcher:
    return LocalFetcher("TARGET", Host)


async def test_rpc_round_trips_plain_data_and_returns_attrdicts(binding: LocalFetcher) -> None:
    when = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    sent = {"a": [1, 2.5, "x", None, True], "when": when, "nested": {"k": b"raw"}}
    got = await binding.echo(sent)
    assert isinstance(got, AttrDict)
    assert got.a == [1, 2.5, "x", None, True]
    assert got.when == when
    assert bytes(got.nested.k) == b"raw"
    assert Target.calls[-1][1] is not sent  # the callee got a copy, not the caller's object
    assert await binding.echo({1, 2}) == {1, 2}  # sets cross Workers RPC


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ((1, 2), "tuple"),
        (bytearray(b"x"), "bytearray"),
        ([(1, 2)], "tuple"),
        ({"k": (1,)}, "tuple"),
        ({1: "int key"}, "not a string"),
        (object(), "object"),
    ],
)
async def test_rpc_rejects_what_workers_rpc_rejects(binding: LocalFetcher, value: Any, kind: str) -> None:
    with pytest.raises(TypeError, match=kind):
        await binding.echo(value)


async def test_rpc_rejects_awaitables(binding: LocalFetcher) -> None:
    async def pending() -> int:
        return 1

    coro = pending()
    with pytest.raises(RpcSerializationError, match="awaitable"):
        await binding.echo(coro)
    coro.close()


async def test_rpc_result_is_serialised_too(binding: LocalFetcher) -> None:
    with pytest.raises(RpcSerializationError, match="result: tuple"):
        await binding.leak_tuple()


async def test_sync_methods_and_keyword_arguments_become_a_trailing_object(binding: LocalFetcher) -> None:
    assert await binding.sync_add(2, 3) == 5
    got = await binding.echo(flag=True)
    assert got == {"flag": True}


@pytest.mark.parametrize("name", ["missing", "queue", "scheduled"])
async def test_unknown_or_runtime_methods_are_not_callable(binding: LocalFetcher, name: str) -> None:
    with pytest.raises(ServiceBindingError, match=f"Method {name} does not exist"):
        await getattr(binding, name)()


def test_private_names_are_not_exposed(binding: LocalFetcher) -> None:
    with pytest.raises(AttributeError):
        binding._private  # noqa: B018


async def test_fetch_reaches_the_target_fetch_handler(binding: LocalFetcher) -> None:
    response = await binding.fetch("https://target/x?y=1", method="POST", body="payload")
    assert response.status == 200
    assert await response.json() == {
        "method": "POST",
        "url": "https://target/x?y=1",
        "body": "payload",
        "env": "target-env",
    }


def test_clone_copies_lists_and_dicts() -> None:
    original = {"k": [1, {"j": 2}]}
    cloned = rpc_clone(original)
    assert cloned == original and cloned is not original and cloned["k"] is not original["k"]
