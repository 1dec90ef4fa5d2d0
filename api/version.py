"""The installed carbonfed package's version (``/v1/version`` and the OpenAPI document)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

PACKAGE = "carbonfed"


def package_version() -> str:
    try:
        return version(PACKAGE)
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"
