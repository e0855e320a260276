"""Static files storage for DEBUG off: hashed names and gzip/brotli copies (WhiteNoise).

Vendor scripts (xterm.js from npm) end with ``//# sourceMappingURL=...map`` comments, but the
source maps are not shipped. Django's manifest storage rewrites those references and fails on the
missing file; this storage leaves source-map comments alone (a browser just finds no map) and
still rewrites every ``url()`` and ``@import`` in CSS.
"""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


def _without_source_maps(patterns):
    kept = []
    for glob, rules in patterns:
        rules = tuple(rule for rule in rules if "sourceMappingURL" not in (rule[0] if isinstance(rule, tuple) else rule))
        if rules:
            kept.append((glob, rules))
    return tuple(kept)


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    patterns = _without_source_maps(CompressedManifestStaticFilesStorage.patterns)
