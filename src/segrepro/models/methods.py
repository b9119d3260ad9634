"""The method list: the one place where the methods of this study are named.

``METHOD_NAMES`` holds the methods in order, the shared baseline first
(every other method is compared against it). Everything else iterates it:

* ``models.build.METHODS`` maps each name to its builder, the function
  ``_<name>`` in ``models/build.py`` (a listed name without a builder fails
  when ``build`` is imported, naming the function to write);
* ``params.Model.options`` holds one option block per name (``model.<name>``
  in ``params.yaml``, ``{}`` where the file has none), and ``params.py``
  checks ``base.methods`` and every ablation variant's ``of`` against it;
* benchmarks default to it.

The module imports nothing, torch least of all: ``segrepro.params`` needs the
names, and the stages that only parse parameters (audit, report) must not
pay seconds for importing torch (``segrepro/models/__init__.py`` is empty,
so importing this module does not import ``build``).

Adding a method takes two edits: write its module (``models/<name>.py``,
opening with its paper and the choices the paper leaves open) together with
its builder ``_<name>(in_channels, decoder, options) -> Insertion`` in
``models/build.py``, and add ``<name>`` to ``METHOD_NAMES`` below. Its
options then go under ``model.<name>`` in ``params.yaml`` and it runs once it
is listed in ``base.methods``.
"""
from __future__ import annotations

METHOD_NAMES: tuple[str, ...] = ("baseline", "sdn", "ddsm", "pdn")

# The reference of every comparison; it takes no options.
BASELINE = METHOD_NAMES[0]
