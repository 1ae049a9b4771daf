"""Perpool: client library for a multi-token custody pool perpetuals exchange on Solana."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("perpool")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
