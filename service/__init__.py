"""kerasserve: serve keras.applications image models over HTTP with dynamic batching."""

if __name__ != "kerasserve.service":  # e.g. `import service` from the repository's root folder
    raise ImportError(
        f"this is kerasserve.service, imported here as {__name__!r}: import kerasserve.service "
        "(or run `python -m kerasserve.service`) after `pip install -e .`"
    )


__version__ = "0.1.0"
