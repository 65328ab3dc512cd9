"""reactive_aiops.testing."""
