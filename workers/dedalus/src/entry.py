"""Edge entry for the dedalus worker: the only dedalus module that touches the Workers SDK.

``fetch`` serves :mod:`dedalus.http` (health and the streamed ``POST /v1/chat``) through the SDK's ASGI
bridge, which turns the streamed body into a JavaScript stream; ``health`` and ``models`` are RPC
methods. The runtime's ``fetch`` is handed to dedalus as its outbound HTTP port (model providers).
"""

from dedalus.http import build_asgi
from dedalus.service import DedalusService
from edgerag.fetch_http import FetchHttpClient
from workers import WorkerEntrypoint, asgi, fetch

_HTTP = FetchHttpClient(fetch)
_APP = build_asgi(lambda env: DedalusService(env, http=_HTTP))


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await asgi.fetch(_APP, request, self.env, self.ctx)

    async def health(self):
        return await DedalusService(self.env).health()

    async def models(self, plan):
        return await DedalusService(self.env).models(str(plan))
