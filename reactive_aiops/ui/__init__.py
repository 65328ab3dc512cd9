"""reactive_aiops.ui."""
