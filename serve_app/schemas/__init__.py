"""Pydantic models of the API: request bodies, success bodies and the error body, one module per
resource (``common`` holds the envelope, the async answer and the error format)."""
