"""Edge entry for the dedalus worker: the only dedalus module that touches the Workers SDK.

RPC methods called by the gateway over the service binding take and return plain Python values; each
delegates to ``dedalus.service.DedalusService``. ``fetch`` serves the same service over HTTP.
"""

from dedalus.http import handle_http
from dedalus.service import DedalusService
from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        reply = await handle_http(DedalusService(self.env), request.method, str(request.url))
        return Response(reply.body, status=reply.status, headers=reply.headers)

    async def health(self):
        return await DedalusService(self.env).health()
