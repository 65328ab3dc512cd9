"""reactive_aiops.server."""
