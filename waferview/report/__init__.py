"""Reports: the summary fields and how they print. Shared by the CLI and the TUI."""
