"""Tenant-scoped data access over D1.

Every method takes the tenant id and every statement filters by it: tenant isolation is enforced here,
below the HTTP layer, so no route can forget it. Another tenant's row is simply not found.
"""
