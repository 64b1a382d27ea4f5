"""What leaves Sluice: webhook deliveries and access reports."""
