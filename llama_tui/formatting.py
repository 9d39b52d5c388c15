"""Numbers as people read them, shared by the engine's listings and the UI."""

from __future__ import annotations


def count_label(count: int) -> str:
    """268_098_176 -> "268M", like the labels model files carry."""
    for unit, size in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if count >= size:
            value = count / size
            fractional = value < 10 and round(value, 1) != int(value)  # "1.5B", but "7B", "268M"
            return f"{value:.1f}{unit}" if fractional else f"{value:.0f}{unit}"
    return str(count)


def counted(count: int, noun: str) -> str:
    """(1, "token") -> "1 token", (2, "token") -> "2 tokens"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def context_label(tokens: int) -> str:
    """32768 -> "32k", 1048576 -> "1M"; sizes that aren't whole k stay as numbers."""
    if tokens >= 1 << 20 and tokens % (1 << 20) == 0:
        return f"{tokens >> 20}M"
    if tokens >= 1024 and tokens % 1024 == 0:
        return f"{tokens >> 10}k"
    return str(tokens)


def human_bytes(size: float | None) -> str:
    """Decimal units, as download pages show them: 253113024 -> "253 MB"."""
    if size is None:
        return "?"
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            value = size / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{size:.0f} B"


def human_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
