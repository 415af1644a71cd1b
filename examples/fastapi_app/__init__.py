"""Example: a FastAPI app that receives Codat webhooks (see README.md)."""
