"""Edge entry for the ingest worker: the only ingest module that touches the Workers SDK.

``queue`` receives batches from the ingest queue and hands them to ``ingest.consumer``; ``fetch``
answers the health check. Non-fetch handlers are called with strict arity, hence the defaults.
"""

from ingest.consumer import handle_batch
from ingest.http import handle_http
from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        reply = await handle_http(self.env, request.method, str(request.url))
        return Response(reply.body, status=reply.status, headers=reply.headers)

    async def queue(self, batch, env=None, ctx=None):
        await handle_batch(batch, self.env)
