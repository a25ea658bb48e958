"""The engine's orchestrator: REST + WebSocket API, sessions, the tutor's brain, Triton calls."""
