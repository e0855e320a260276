"""Killercoda and Katacoda scenarios, in and out of this site's lesson folders.

Pure Python (no Django): the management commands ``import_scenario`` and ``export_scenario`` wrap
it, and validate what it writes with the lesson loader.

- :mod:`.reader` reads a scenario folder (``index.json``), a course (``structure.json`` or a
  Katacoda ``*-pathway.json`` naming scenario folders) or a zip of any of them, into :class:`~.reader.Scenario` values.
- :mod:`.markdown` turns a scenario's Markdown into this site's (``{{exec}}`` -> ``run`` blocks,
  ``<details>`` -> hints and solution, editor blocks, Katacoda quizzes).
- :mod:`.rewrites` adapts commands, scripts and manifests to the classroom (``/root`` -> ``$HOME``,
  ports on 127.0.0.1, the classroom registry, Pod Security "restricted"), and names what cannot
  run here.
- :mod:`.mapper` builds a lesson folder (files as text) and its report from a scenario.
- :mod:`.exporter` writes a lesson folder back out as a Killercoda scenario.

The rule throughout: nothing is dropped silently. Every key, annotation and file is either mapped
or named in the report (``IMPORT_REPORT.md`` / ``EXPORT_REPORT.md``) with the file and line it
came from; ``docs/importing.md`` lists what maps and why the rest cannot run here.
"""
