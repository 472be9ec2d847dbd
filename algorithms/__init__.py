"""The Processing side: the provider and one thin algorithm module per tool."""
