"""Models and where they come from, resolved and measured without loading them.

* :mod:`.catalog`: built-in names, their sources in order of preference, sha256;
* :mod:`.references`: a reference a user types resolved into a ``ModelSpec``;
* :mod:`.store`: the on-disk store under ``$MOA_LOCAL_HOME/models`` (atomic, verified);
* :mod:`.sources`: how bytes arrive (PyPI wheels through pip, the hub);
* :mod:`.gguf_meta`, :mod:`.estimate`: a GGUF header, and the memory a model will take.
"""
