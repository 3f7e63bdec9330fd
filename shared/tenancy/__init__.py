"""Tenancy: workspaces, their write keys and the admin tokens that open the admin APIs.

Every service resolves a workspace by name (:func:`~shared.tenancy.service.find_workspace`)
and checks keys and tokens here; only the CLI and the embedded mode create or revoke them.
"""
