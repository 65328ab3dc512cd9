"""reactive_aiops.aiops."""
