"""reactive_aiops.core."""
