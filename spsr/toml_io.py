"""The one TOML reader: configuration files, stored run configurations, ablation specs.

Python 3.11 reads TOML with the standard library's ``tomllib``; on Python 3.10 the same parser
is the ``tomli`` package (a dependency there), so every reader goes through :func:`read_toml`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from spsr.errors import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def read_toml(path: str | os.PathLike[str], what: str = "configuration file") -> dict[str, Any]:
    """The TOML file at ``path`` as a nested dict.

    Args:
        path: the file.
        what: what the file is, for the messages ("configuration file", "ablation spec").

    Raises:
        ConfigError: the file is missing, a folder, unreadable, not UTF-8 or not TOML (one line
            naming the file).
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a folder, not a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML (not UTF-8 text: byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
