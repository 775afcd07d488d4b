"""Where results go: the report folder, the figures, the terminal and the CI formats."""
