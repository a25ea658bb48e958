"""The tutor's face: avatars, visemes, and the renderer that animates them."""
