"""Redis state (the only package that knows Redis keys)."""
