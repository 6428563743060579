"""What the model sees in production against what it learned from: captured records and reference.json."""
