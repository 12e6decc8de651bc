"""Object storage as a lake root: the worker's delta-rs storage options, and storage errors classified.

Options come from DATALOADER_LAKE_STORAGE_OPTIONS, a JSON object of delta-rs/object_store keys
(`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`,
`GOOGLE_SERVICE_ACCOUNT_PATH`, `AZURE_STORAGE_ACCOUNT_NAME`, …). A key missing there is read by
delta-rs from the environment variable of the same name, so per-key variables work as well. Local
lake roots use no options. Option values are secrets as far as messages go: they never appear in one.

`storage_error` maps what delta-rs raises for S3, GCS and Azure to a LoadError whose kind the retry
analysis can act on and whose message names the setting to fix: throttling, timeouts, unreachable
endpoints and 5xx answers are transient; authentication, a missing bucket, a plain-HTTP endpoint
without AWS_ALLOW_HTTP and an unknown URL scheme are configuration errors.
"""

from __future__ import annotations

import json
import os
import re

from dataloader_contract.errors import ConfigurationError, LoadError, PermanentLoadError, TransientLoadError

OPTIONS_ENV = "DATALOADER_LAKE_STORAGE_OPTIONS"
LAKE_ROOT_ENV = "DATALOADER_LAKE_ROOT"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_QUERY = re.compile(r"\?[^\s]*")
_STATUS = re.compile(r"\b([45]\d\d) [A-Z][A-Za-z ]+")


def is_object_store(lake_root: str) -> bool:
    """True for a URL lake root (s3://, gs://, az://, abfss://, …), False for a local path."""
    return "://" in lake_root and not lake_root.startswith("file://")


def lake_storage_options(lake_root: str) -> dict[str, str] | None:
    """The storage options for tables under `lake_root` (None for a local root or when none are set).

    Raises:
        ConfigurationError: DATALOADER_LAKE_STORAGE_OPTIONS is not a JSON object of strings.
    """
    if not is_object_store(lake_root):
        return None
    raw = os.environ.get(OPTIONS_ENV, "").strip()
    if not raw:
        return None
    try:
        options = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{OPTIONS_ENV} is not valid JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(options, dict):
        raise ConfigurationError(f"{OPTIONS_ENV} must be a JSON object of option names to strings")
    bad = sorted(key for key, value in options.items() if not isinstance(value, str | int | float | bool))
    if bad:
        raise ConfigurationError(f"{OPTIONS_ENV}: option(s) {', '.join(bad)} must be strings")
    return {str(key): _text(value) for key, value in options.items()}


def _text(value: str | int | float | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def looks_like_storage_error(exc: BaseException) -> bool:
    """Whether `exc` came from the object store (rather than from Delta's own rules)."""
    text = str(exc)
    return isinstance(exc, OSError) or any(
        word in text for word in ("Generic S3 error", "Generic GCS error", "MicrosoftAzure", "Unknown scheme")
    )


def storage_error(exc: BaseException, uri: str, options: dict[str, str] | None = None) -> LoadError:
    """A LoadError for a storage failure on `uri`, naming the setting to fix; no option value in it."""
    text = _ANSI.sub("", str(exc))
    lower = text.lower()
    detail = _detail(text, options)
    status = _STATUS.search(text)
    code = f"http_{status.group(1)}" if status else None
    if "unknown scheme" in lower:
        return ConfigurationError(
            f"{uri}: the lake root's URL scheme is not supported; fix {LAKE_ROOT_ENV} "
            f"(s3://, gs://, az://, abfss:// or a local path): {detail}",
            code="storage_scheme",
        )
    if "url scheme is not allowed" in lower:
        return ConfigurationError(
            f"{uri}: the storage endpoint is plain http://, which is refused unless allowed: set "
            f"AWS_ALLOW_HTTP=true in {OPTIONS_ENV} (or the AWS_ALLOW_HTTP variable), or use https://",
            code="storage_http_not_allowed",
        )
    if code == "http_404" or "nosuchbucket" in lower or "bucket not found" in lower:
        return ConfigurationError(
            f"{uri}: the bucket or container does not exist; fix {LAKE_ROOT_ENV} or create it: {detail}",
            code=code or "storage_missing_bucket",
        )
    auth_words = ("forbidden", "accessdenied", "invalidaccesskeyid", "signaturedoesnotmatch", "unauthorized")
    if code in ("http_401", "http_403") or any(word in lower for word in auth_words) or _no_account(lower):
        return ConfigurationError(
            f"{uri}: the object store refused the credentials; check the access key / secret / token "
            f"(AWS_*, GOOGLE_*, AZURE_*) in {OPTIONS_ENV} or the environment: {detail}",
            code=code or "storage_auth",
        )
    throttled = code in ("http_429", "http_503") or "slowdown" in lower or "throttl" in lower
    server = code is not None and code.startswith("http_5")
    unreachable = any(
        word in lower
        for word in ("timed out", "timeout", "error sending request", "connect", "dns error", "connection")
    )
    if throttled or server or unreachable:
        what = "throttled" if throttled else "failed on the server side" if server else "unreachable"
        return TransientLoadError(
            f"{uri}: the object store is {what}; a retry may succeed (if it persists, check "
            f"AWS_ENDPOINT_URL / the endpoint in {OPTIONS_ENV}): {detail}",
            code=code or ("storage_throttled" if throttled else "storage_unreachable"),
        )
    return PermanentLoadError(f"{uri}: storage failed: {detail}", code=code)


def _no_account(lower: str) -> bool:
    return "account must be specified" in lower or "token request" in lower or "credential" in lower


def _detail(text: str, options: dict[str, str] | None) -> str:
    """The innermost causes of a delta-rs error chain, one line, without option values."""
    parts = [part.strip(" ↳\n") for part in re.split(r"\n\s*↳|\n", text) if part.strip(" ↳\n")]
    detail = " / ".join(parts[-3:]) if parts else type(text).__name__
    detail = _QUERY.sub("?…", detail)  # a signed URL's query string can carry a token
    for value in (options or {}).values():
        if len(value) >= 4:
            detail = detail.replace(value, "***")
    return detail[:400]
