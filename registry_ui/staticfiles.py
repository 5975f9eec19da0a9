"""Static files as served in production: WhiteNoise's compressed manifest storage (content-hashed
names, so a file can be cached for a year; gzip and brotli copies written by collectstatic, so the
1.1 MB partial plotly bundle travels as 0.32 MB).

Where collectstatic has not run (the tests, a first start before `manage.py demo` collects), the
manifest has no entry and the file keeps its own name: WhiteNoise then serves it from static/
through the finders (WHITENOISE_USE_FINDERS in settings). A missing manifest entry must not break a
page, which is what the stock storage does (ValueError).
"""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class ConsoleStaticFilesStorage(CompressedManifestStaticFilesStorage):
    manifest_strict = False

    def stored_name(self, name: str) -> str:
        try:
            return super().stored_name(name)
        except ValueError:  # not collected: no manifest entry and no copy in STATIC_ROOT to hash
            return name
