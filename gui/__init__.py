"""The plugin's Qt side: widgets that Processing's dialogs build for its parameters."""
