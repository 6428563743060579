"""Build tooling for the Lambda zip; never shipped in it nor in the image."""
