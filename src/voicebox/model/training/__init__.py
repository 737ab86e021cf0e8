"""What only training needs: corpora (recipe, synth, prepare, augment, corpus_io, data), the training
loop (train) and its losses (vocoder_loss, discriminators). Inference never imports this package."""
