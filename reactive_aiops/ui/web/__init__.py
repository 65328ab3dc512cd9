"""The live dashboard in a browser: NiceGUI views on the same store (``reactive-aiops web``).

* :mod:`.adapter` -- :func:`bind_client`: a store stream delivered to one browser tab on the
  server's loop, coalesced to at most ``fps`` renders a second, unbound when the tab goes away
  (no NiceGUI import);
* :mod:`.model` -- the pure records and decisions (frames, filters, notifications, histories,
  command audit);
* :mod:`.hub` -- the process's shared part: one store, the chart series, commands and audit;
* :mod:`.page` / :mod:`.server` -- the NiceGUI page of one tab and the process that serves them;
* :mod:`.auth` -- the users file (scrypt hashes) for non-loopback hosts.

Needs the ``web`` extra (``pip install 'reactive-aiops[web]'``) for :mod:`.page` and
:mod:`.server`; importing this package does not import NiceGUI.
"""

from reactive_aiops.ui.web.adapter import bind_client

__all__ = ["bind_client"]
