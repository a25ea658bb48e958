"""Live streaming to browsers: one WebRTC peer per user, an avatar's speech and face on it."""
