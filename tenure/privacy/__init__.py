"""Person ids at Tenure's boundaries: tokens out, ids back in (docs/design/erasure.md).

:mod:`tenure.privacy.pseudonyms` makes tokens (a keyed hash of the id);
:mod:`tenure.privacy.boundary` tokenises events where they are published (ingest, the SDK
validator) and registers each token's id in the vault
(:mod:`tenure.storage.person_pseudonyms`).
"""
