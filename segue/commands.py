"""Text commands in the prompt: ``--rs 720p --dur 5 --cf false``.

Recognised commands are removed from the prompt; any other ``--word`` stays in
it. A recognised command with an invalid value is an ``InvalidParameter``
naming the command. Values are checked here only for their type; ranges are
checked once, in ``segue.requests``, for commands and body fields alike.
"""

from __future__ import annotations

import re

from segue.errors import InvalidParameter

# command spelling -> canonical setting name
ALIASES = {
    "resolution": "resolution", "rs": "resolution",
    "ratio": "ratio", "rt": "ratio",
    "duration": "duration", "dur": "duration",
    "frames": "frames",
    "framespersecond": "framespersecond", "fps": "framespersecond",
    "seed": "seed",
    "camerafixed": "camerafixed", "cf": "camerafixed",
    "watermark": "watermark", "wm": "watermark",
}
_BOOLEAN = {"camerafixed", "watermark"}
_INTEGER = {"duration", "frames", "framespersecond", "seed"}
_COMMAND = re.compile(r"(?<!\S)--([A-Za-z]+)(?:[ \t]+|=)([^\s]+)")


def parse_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidParameter(name, f"expected true or false, got {value!r}")


def parse_int(name: str, value: object) -> int:
    if isinstance(value, bool):
        raise InvalidParameter(name, f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    raise InvalidParameter(name, f"expected an integer, got {value!r}")


def parse_commands(text: str) -> tuple[str, dict[str, object], dict[str, str]]:
    """Split a prompt into (clean prompt, settings, the flag each setting was spelled with)."""
    settings: dict[str, object] = {}
    flags: dict[str, str] = {}

    def take(match: re.Match[str]) -> str:
        flag, value = match.group(1), match.group(2)
        name = ALIASES.get(flag.lower())
        if name is None:
            return match.group(0)  # not ours: part of the prompt
        flags[name] = f"--{flag}"
        if name in _BOOLEAN:
            settings[name] = parse_bool(f"--{flag}", value)
        elif name in _INTEGER:
            settings[name] = parse_int(f"--{flag}", value)
        else:
            settings[name] = value
        return ""

    clean = _COMMAND.sub(take, text)
    return re.sub(r"[ \t]{2,}", " ", clean).strip(), settings, flags
