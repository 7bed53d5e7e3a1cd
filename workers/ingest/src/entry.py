"""Edge entry for the ingest worker: the only ingest module that touches the Workers SDK.

``queue`` receives batches from the ingest queue and hands them to ``ingest.consumer``, with the
runtime's ``fetch`` as the outbound HTTP port for URL documents (``redirect: "manual"``, so that
``edgerag.url_fetch`` checks every hop's address); ``scheduled`` runs the URL re-sync cron
(``ingest.cron``); ``fetch`` answers the health check. Non-fetch handlers are called with strict
arity, hence the defaults.
"""

from edgerag.fetch_http import FetchHttpClient
from ingest.consumer import handle_batch
from ingest.cron import handle_scheduled
from ingest.http import handle_http
from workers import Response, WorkerEntrypoint, fetch

_HTTP = FetchHttpClient(fetch, follow_redirects=False)


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        reply = await handle_http(self.env, request.method, str(request.url))
        return Response(reply.body, status=reply.status, headers=reply.headers)

    async def queue(self, batch, env=None, ctx=None):
        await handle_batch(batch, self.env, http=_HTTP)

    async def scheduled(self, controller, env=None, ctx=None):
        await handle_scheduled(self.env, str(controller.cron), float(controller.scheduledTime))
