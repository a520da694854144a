"""Deploying: the Pulumi stacks (Automation API), the checks before an update, the
tests' sandboxes, the Docker engine."""
