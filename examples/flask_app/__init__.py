"""Example: a Flask app that receives Codat webhooks (see README.md)."""
