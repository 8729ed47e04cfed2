"""Chat models that graphrelay ships, such as the offline scripted model."""
