"""The data: backup and restore, moving keys between layouts."""
