"""Who may see what: policy data and the rules compiled from it."""
