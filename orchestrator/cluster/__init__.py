"""Several engines behind one front door: what they share in Redis (ENGINE_REDIS_URL)."""
