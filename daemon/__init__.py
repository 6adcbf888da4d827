"""nosana-cache: a node-side caching daemon for the GPU hosts of the Nosana network."""

__version__ = "0.1.0"
