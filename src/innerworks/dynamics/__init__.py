"""innerworks.dynamics."""
