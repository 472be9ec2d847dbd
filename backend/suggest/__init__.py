"""Where to digitise next: the places a new label is expected to help the model most."""
