"""The learned models: the e5 embedding encoder and its exports, the extractive reader, its training data and training."""
