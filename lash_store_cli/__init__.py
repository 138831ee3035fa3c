"""The ``lash-store`` command line: inspect and maintain a lash store, run the conformance suite.

- :mod:`.cli`: the click commands and the entry point ``main``;
- :mod:`.commands`: what each command does;
- :mod:`.render`: plain-text tables, graph trees and payload previews;
- :mod:`.demo`: the simulated agent sessions of ``lash-store demo``.

``python -m lash_store_cli`` runs the same command as the ``lash-store`` script.
"""
