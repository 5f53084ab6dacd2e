"""The one TOML reader: configuration files, stored run configurations, ablation specs.

Python 3.11 reads TOML with the standard library's ``tomllib``; on Python 3.10 the same parser
is the ``tomli`` package (a dependency there), so every reader goes through :func:`read_toml`.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from spsr.errors import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

#: Configuration files and ablation specs are a few kB; a larger one is refused unparsed.
MAX_TOML_BYTES = 4 * 1024 * 1024


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
            data = fh.read(MAX_TOML_BYTES + 1)
        if len(data) > MAX_TOML_BYTES:
            raise ConfigError(f"{path}: more than {MAX_TOML_BYTES:,} bytes; not a {what}")
        return tomllib.load(io.BytesIO(data))
    except RecursionError:  # tomllib recurses once per level of nested arrays / inline tables
        raise ConfigError(f"{path}: not valid TOML (nested too deeply)") from None
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
