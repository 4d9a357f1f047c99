"""The inference side: model catalogue, weights, labels, image decoding and runtimes (no HTTP)."""
