"""The Pulumi program: what a stack declares, from its typed settings."""
