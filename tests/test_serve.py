"""`seqlab serve --host/--port`: every loopback address is treated as loopback (Host-header guard, no
warning), the socket is bound before the URL is printed, and a bind that fails is one line, exit 2."""

from __future__ import annotations

import http.client
import socket
import threading
import time

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
from fastapi.testclient import TestClient  # noqa: E402

import seqlab.cli.serve as serve  # noqa: E402
from seqlab.cli import main  # noqa: E402


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("127.255.255.254", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("LOCALHOST", True), ("::ffff:127.0.0.1", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("10.0.0.1", False), ("example.com", False),
    ("128.0.0.1", False), ("localhost.example.com", False),
])
def test_loopback_is_all_of_127_8_and_ipv6_1(host, loopback):
    assert serve.is_loopback(host) is loopback


def _free_port(host="127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@pytest.fixture
def served(monkeypatch):
    """main(["serve", ...]) with the blocking part replaced: records the app and the bound socket."""
    seen = {}

    def run(app, sock, log_level):
        seen.update(app=app, addr=sock.getsockname(), listening=sock.getsockopt(socket.SOL_SOCKET,
                                                                                 socket.SO_ACCEPTCONN))

    monkeypatch.setattr(serve, "run_server", run)
    return seen


@pytest.mark.parametrize("host", ["127.0.0.2", "::1"])
def test_another_loopback_address_keeps_the_host_check_and_needs_no_warning(host, served, capsys):
    port = _free_port(host)
    assert main(["serve", "--host", host, "--port", str(port)]) == 0
    out = capsys.readouterr().out
    shown = f"[{host}]" if ":" in host else host
    assert f"serving http://{shown}:{port}" in out and "warning" not in out, out
    assert served["addr"][:2] == (host, port) and served["listening"]
    ok = TestClient(served["app"], base_url=f"http://{shown}:{port}").get("/api/models")
    assert ok.status_code == 200
    for evil in ("http://evil.example", f"http://evil.example:{port}"):  # DNS rebinding: refused
        assert TestClient(served["app"], base_url=evil).get("/api/models").status_code == 400


def test_all_interfaces_warns_and_accepts_any_host_name(served, capsys):
    port = _free_port("0.0.0.0")
    assert main(["serve", "--host", "0.0.0.0", "--port", str(port)]) == 0
    out = capsys.readouterr().out
    assert f"serving http://0.0.0.0:{port}" in out and "lets other machines use this server" in out
    assert TestClient(served["app"], base_url="http://my-box.lan").get("/api/models").status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1"])
def test_a_port_in_use_is_one_line_and_no_url_is_printed(host, served, capsys):
    with socket.socket() as blocker:
        blocker.bind((host, 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        assert main(["serve", "--host", host, "--port", str(port)]) == 2
    cap = capsys.readouterr()
    assert "serving" not in cap.out and not served
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0] == (f"seqlab: error: port {port} on {host} is already in use (another "
                                            "server?); stop it or choose another --port"), cap.err


@pytest.mark.parametrize("host, says", [
    ("192.0.2.1", "is not an address of this machine"),  # TEST-NET-1: never this machine's
    ("no.such.host.invalid", "not an address or known host name"),
])
def test_a_bad_address_is_one_line_and_no_url_is_printed(host, says, served, capsys):
    assert main(["serve", "--host", host, "--port", "8123"]) == 2
    cap = capsys.readouterr()
    assert "serving" not in cap.out and not served
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"seqlab: error: --host {host}") and says in lines[0], cap.err


@pytest.mark.parametrize("port", ["0", "-1", "65536", "x"])
def test_a_bad_port_is_refused_while_parsing(port, served, capsys):
    with pytest.raises(SystemExit) as e:
        main(["serve", f"--port={port}"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--port" in err[0] and not served


def test_the_bound_socket_really_serves(monkeypatch, capsys):
    """No stub: uvicorn serves on the socket bound before the URL was printed (127.0.0.2, a loopback
    address other than 127.0.0.1); the Host-header guard answers there."""
    servers = []

    class Recording(uvicorn.Server):
        def __init__(self, config):
            super().__init__(config)
            servers.append(self)

    monkeypatch.setattr(uvicorn, "Server", Recording)
    port = _free_port("127.0.0.2")
    result = {}
    t = threading.Thread(target=lambda: result.update(code=main(["serve", "--host", "127.0.0.2", "--port",
                                                                 str(port)])), daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 30
        while not (servers and servers[0].started) and time.monotonic() < deadline and t.is_alive():
            time.sleep(0.02)
        assert servers and servers[0].started
        for host, want in ((f"127.0.0.2:{port}", 200), ("evil.example", 400)):
            c = http.client.HTTPConnection("127.0.0.2", port, timeout=10)
            c.request("GET", "/api/models", headers={"Host": host})
            assert c.getresponse().status == want, host
            c.close()
    finally:
        if servers:
            servers[0].should_exit = True
        t.join(10)
    assert result.get("code") == 0
    assert f"serving http://127.0.0.2:{port}" in capsys.readouterr().out
