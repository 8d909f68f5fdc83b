"""Reading documents: file formats, the corpus folder, passages."""
