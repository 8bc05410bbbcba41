"""The API contract: pydantic models that validate request bodies and describe every body in /v1/openapi.json."""
