"""Local emulators of the destinations' public APIs, enforcing the documented contracts."""
