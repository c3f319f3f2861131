"""Running santelake on one machine: artifacts, secrets, certificates and service processes."""
