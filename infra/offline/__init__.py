"""The plan without the cloud: the program run on Pulumi's mocks, rendered as files and a diff."""
