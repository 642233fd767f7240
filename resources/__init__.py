"""Studio's bundled data (demo media, icons), read with importlib.resources so it works from a wheel."""
