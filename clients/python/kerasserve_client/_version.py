"""The installed version, for the User-Agent header."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kerasserve")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
