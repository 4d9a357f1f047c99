"""`kerasserve train`: fine-tune a catalogue model on a folder of photos, publish a version."""
