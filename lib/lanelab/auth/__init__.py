"""From a login to a credential the kit may send (notebook 01; the ``login`` and ``creds`` commands).

``paste`` (what the user pasted) → ``oauth`` (endpoint sets, exchange, refresh) → ``credential`` (the record) →
``store`` (the kit's own files) and ``importers`` (other clients' files, read-only) → ``resolve`` (a label to a
credential) → ``issuer`` (where a credential may be sent; the default label per mode) → ``introspect`` (what a
credential is and what the account says) → ``flow`` and ``widget`` (the step-through). Nothing is imported here:
import from the module that owns a name.
"""
