"""The leaderboard: result files merged into one row per cell, shown, compared with published
numbers, and rendered as a static page. The row rules live in ``rows``."""

from pathlib import Path

DEFAULT_DIR = Path("leaderboard")
DEFAULT_LEADERBOARD = DEFAULT_DIR / "leaderboard.json"
DEFAULT_PUBLISHED = DEFAULT_DIR / "published.json"
DEFAULT_HTML = DEFAULT_DIR / "index.html"
