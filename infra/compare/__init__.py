"""`make compare`: Kubernetes or Lambda, priced per environment from its settings and measured runtimes."""
