"""The stack's settings read exactly as infra/__main__.py reads them, exported, with no resources: the
CLI's config checks and the program's, without a provider."""

import pulumi
from program import settings

try:
    loaded = settings.load()
except settings.SettingsError as error:
    raise pulumi.RunError(str(error)) from None
pulumi.export("settings", loaded.config())
