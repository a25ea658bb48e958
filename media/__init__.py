"""What the tutor sounds and looks like: audio, MP4, avatars and their animation.

The floor both `orchestrator/` and `webrtc/` stand on; it imports neither of them, nor
Triton's client or the web framework.
"""
