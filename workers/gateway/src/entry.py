"""Edge entry for the gateway worker: the only gateway module that touches the Workers SDK.

It hands the real request, env and ctx to the same ASGI application the local runtime serves, and
cron ticks to ``gateway.cron``; all behaviour lives in the ``gateway`` package. Non-fetch handlers
are called with strict arity, hence the defaults.
"""

from gateway.app import get_app
from gateway.cron import handle_scheduled
from workers import WorkerEntrypoint, asgi


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await asgi.fetch(get_app(), request, self.env, self.ctx)

    async def scheduled(self, controller, env=None, ctx=None):
        await handle_scheduled(self.env, str(controller.cron), float(controller.scheduledTime))
