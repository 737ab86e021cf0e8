"""Tasks compose engines and the model: clean, read, transcribe, edit, clone, provenance."""
