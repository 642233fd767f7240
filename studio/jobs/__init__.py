"""Background jobs with progress and cancel, shared by the GUI and the CLI. Imports no Qt."""
