"""reactive_aiops.protocol."""
