"""What every package shares: the errors a command reports, the checks of config values, atomic
writes, checksums and the log format."""
