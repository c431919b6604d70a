"""What every package shares: the errors a command reports and the checks of config values."""
