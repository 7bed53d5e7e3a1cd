"""edgerag's local edge runtime (CPython only, never deployed): one emulator module per Cloudflare
binding, env-from-wrangler-config, the host that runs the three workers through their entry modules,
and the developer CLI."""
