"""The application: the `studio` command with its GUI commands, above both studio.ui and studio.cli."""
