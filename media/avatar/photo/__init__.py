"""Photo avatars: a real face from one portrait, animated by warping it per viseme."""
