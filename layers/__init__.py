"""The built-in layer plugin: importing it registers the built-in cells."""
