"""reactive_aiops.streams."""
