"""Support code of the TITAN Chalice app: configuration, validation, signals, responses."""
