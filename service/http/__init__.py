"""The HTTP side: FastAPI app, routes, errors, limits, metrics (never imports TensorFlow)."""
