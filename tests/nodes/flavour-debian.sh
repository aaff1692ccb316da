# Flavour debian: plain Debian bookworm. Nothing to add.
true
