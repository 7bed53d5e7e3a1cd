"""Edge entry for the gateway worker: the only gateway module that touches the Workers SDK.

It hands the real request, env and ctx to the same ASGI application the local runtime serves; all
behaviour lives in the ``gateway`` package.
"""

from gateway.app import get_app
from workers import WorkerEntrypoint, asgi


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await asgi.fetch(get_app(), request, self.env, self.ctx)
