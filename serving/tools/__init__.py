"""What works on the server but never ships: the quick start, the packaging (the Lambda zip, the
image's contents without Docker, the package decision) and the benchmarks. serving/'s top-level
modules are exactly what the image and the Lambda zip carry; nothing in them imports from here."""
