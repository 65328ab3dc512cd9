"""reactive_aiops.wire."""
