"""Session fixtures that train small models once, for the tests that need a trained model."""
