from pathlib import Path

AVATARS = Path(__file__).resolve().parents[2] / "avatars"
