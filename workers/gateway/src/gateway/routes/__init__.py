"""The gateway's routers, one per area of the API."""
