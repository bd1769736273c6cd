"""The KRaft cluster id and the command line that formats the log dir (issue 16)."""

from __future__ import annotations

import base64
from pathlib import Path

from tenure.runtime.apache_kafka import new_cluster_id, storage_format_argv


def test_cluster_ids_never_start_with_a_dash_and_decode_to_16_bytes() -> None:
    # About 1 draw in 64 starts with "-" before the redraw: 5,000 draws would meet ~78.
    ids = [new_cluster_id() for _ in range(5000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)


def test_format_passes_every_value_attached_to_its_option() -> None:
    argv = storage_format_argv("/libs/*", "-dashFirstId0123456789", Path("/k/server.properties"))
    assert "--cluster-id=-dashFirstId0123456789" in argv
    assert "--config=/k/server.properties" in argv
    # No generated value stands alone where an option parser could take it for an option.
    assert not [a for a in argv[argv.index("format") + 1 :] if not a.startswith("--")]
