"""What `__main__.py` wires: the stack's configuration, provider, environment and image
lookups, the instances' user data, and the program that builds the components from them."""
