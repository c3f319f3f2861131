"""What installing the chart takes beyond the chart itself: the Secrets it names."""
