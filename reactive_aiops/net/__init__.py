"""reactive_aiops.net."""
