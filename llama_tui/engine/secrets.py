"""API keys for model servers: from an environment variable, or the OS keyring.

Keys are never written to a file by this module. The settings name an environment variable
(`api_key_env`); a key typed in the app goes to the OS keyring (Secret Service, macOS
Keychain, Windows Credential Locker) through the `keyring` package, and only if that package
is installed and a keyring answers: it is optional, so the app works without it.
"""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType

log = logging.getLogger(__name__)

KEYRING_SERVICE = "llama-tui"
"""The keyring's service name; the user name is the server's endpoint URL."""

_this_session: dict[str, str] = {}
"""Keys typed in the app when no keyring could keep them: for this run only, in memory."""


def keep_for_this_session(endpoint: str, key: str) -> None:
    _this_session[endpoint] = key


def _keyring() -> ModuleType | None:
    try:
        return importlib.import_module("keyring")
    except ImportError:
        return None


def read_api_key(endpoint: str, env_var: str | None = None) -> str | None:
    """The key for `endpoint`: the environment variable `env_var` if it is set and not empty,
    else the one kept in the keyring for this endpoint, else None."""
    if env_var:
        value = os.environ.get(env_var, "").strip()
        if value:
            return value
    if endpoint in _this_session:
        return _this_session[endpoint]
    keyring = _keyring()
    if keyring is None:
        return None
    try:
        value = keyring.get_password(KEYRING_SERVICE, endpoint)
    except Exception as error:  # noqa: BLE001 - backends raise their own types (D-Bus, locked...)
        log.info("keyring: cannot read the key for %s: %s", endpoint, error)
        return None
    return value or None


def store_api_key(endpoint: str, key: str) -> bool:
    """Keep `key` for `endpoint` in the OS keyring; whether it was kept (False when `keyring`
    is not installed or no keyring answers: the caller then keeps it for this session only)."""
    keyring = _keyring()
    if keyring is None:
        return False
    try:
        keyring.set_password(KEYRING_SERVICE, endpoint, key)
    except Exception as error:  # noqa: BLE001 - see read_api_key
        log.info("keyring: cannot keep the key for %s: %s", endpoint, error)
        return False
    return True
