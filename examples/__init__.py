"""Examples of codat-webhooks mounted in real apps; run them from the repository root."""
