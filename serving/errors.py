"""Errors a client can cause or meet; each carries its HTTP status, mapped to `{"error": msg}` once."""

from __future__ import annotations


class ServingError(Exception):
    """Base: a message safe to show the client, and the status that goes with it."""

    status = 500


class BadRequest(ServingError):
    status = 400


class RequestTimeout(ServingError):
    status = 408


class NotFound(ServingError):
    status = 404


class MethodNotAllowed(ServingError):
    status = 405


class PayloadTooLarge(ServingError):
    status = 413


class UnsupportedMediaType(ServingError):
    status = 415


class TooManyRequests(ServingError):
    status = 429


class Unavailable(ServingError):
    status = 503


class Timeout(ServingError):
    status = 504


class ArtifactError(Exception):
    """The model artifact is missing or inconsistent: a deployment problem, fatal at start."""
