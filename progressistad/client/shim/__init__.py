"""The directory `progressista run -- CMD` puts first on the command's PYTHONPATH (see sitecustomize)."""
