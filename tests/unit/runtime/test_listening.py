import os
import socket

from santelake.runtime.listening import Listener, listeners


def test_own_listening_sockets_are_found_with_their_address() -> None:
    with socket.socket() as loop, socket.socket() as wild:
        loop.bind(("127.0.0.1", 0))
        loop.listen()
        wild.bind(("0.0.0.0", 0))
        wild.listen()
        found = {(item.address, item.port): item for item in listeners({os.getpid()})}
        assert found[("127.0.0.1", loop.getsockname()[1])].loopback
        assert not found[("0.0.0.0", wild.getsockname()[1])].loopback


def test_ipv4_mapped_loopback_counts_as_loopback() -> None:
    assert Listener(1, "::ffff:127.0.0.1", 1).loopback
    assert Listener(1, "::1", 1).loopback
    assert not Listener(1, "::", 1).loopback
