"""Request limits of the local server (stdlib only: the SDK's CLI reads them too)."""

# A request body over this many bytes is refused with 413 before it is parsed.
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
# Rows (examples) in one request; more is a 400.
DEFAULT_MAX_ROWS = 10_000
