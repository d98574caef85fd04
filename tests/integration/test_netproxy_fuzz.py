"""Mutated HTTP heads, bodies and SOCKS5 handshakes thrown at the proxy
(a deterministic mutation fuzzer over real sockets; under the ASan+UBSan
build any memory error aborts the server). Every input must end in an
answer or a close, and afterwards the server must still answer requests and
forward a valid one. WARDEN_FUZZ_CASES and WARDEN_FUZZ_SEED change the run."""

import os
import random
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from netproxy_util import origin, proxy_conn, recv_response, request, warden_proxy  # noqa: E402
from wardenrpc import run_tests  # noqa: E402

CASES = int(os.environ.get("WARDEN_FUZZ_CASES", "1500"))
SEED = int(os.environ.get("WARDEN_FUZZ_SEED", "11"))


def seeds(op):
    t = b"127.0.0.1:%d" % op
    return [
        b"GET http://%s/a?b=c HTTP/1.1\r\nHost: %s\r\nX-A: 1\r\n\r\n" % (t, t),
        b"GET http://%s/ HTTP/1.1\r\nHost: %s\r\n\r\nGET http://%s/2 HTTP/1.1\r\n\r\n"
        % (t, t, t),
        b"POST http://%s/p HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n" % (t, t),
        b"POST http://%s/p HTTP/1.1\r\nContent-Length: 5\r\nConnection: close, X\r\n\r\nhello"
        % t,
        b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\nearly bytes" % (t, t),
        b"GET http://[::1]:%d/ HTTP/1.0\r\n\r\n" % op,
        b"HEAD http://localhost:%d/ HTTP/1.1\r\nExpect: 100-continue\r\n\r\n" % op,
        b"\x05\x01\x00\x05\x01\x00\x01\x7f\x00\x00\x01" + op.to_bytes(2, "big") + b"ping",
        b"\x05\x02\x00\x02\x05\x01\x00\x03\x09localhost" + op.to_bytes(2, "big"),
        b"\x05\x01\x00\x05\x01\x00\x04" + b"\x00" * 15 + b"\x01" + op.to_bytes(2, "big"),
        b"\x05\x01\x00\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00",
        b"\x05\x01\x00\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50",
    ]


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(7)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:  # flip a byte
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 1:  # truncate
            del data[pos:]
        elif op == 2:  # insert random bytes
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 3:  # repeat a slice (long headers, many headers)
            piece = data[pos:pos + rng.randint(1, 64)]
            data[pos:pos] = piece * rng.randint(2, 600)
        elif op == 4:  # an interesting token
            tok = rng.choice([b"\r\n", b"\r\n\r\n", b":", b"[", b"]", b"%25", b"\x00",
                              b"Transfer-Encoding: chunked\r\n", b"Content-Length: 99999999\r\n",
                              b"ffffffffffffffff\r\n", b"Host: evil\r\n", b"\x05", b"\xff" * 4])
            data[pos:pos] = tok
        elif op == 5 and data:  # drop a byte
            del data[min(pos, len(data) - 1)]
        else:  # swap halves
            data = data[pos:] + data[:pos]
    return bytes(data)


def one(pp, payload):
    try:
        s = socket.create_connection(("127.0.0.1", pp), timeout=30)
    except OSError:
        return "connect failed"
    try:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
        return None
    except socket.timeout:
        return "no answer and no close"
    except OSError:
        return None  # closed on us (reset, not connected): a close is an answer
    finally:
        s.close()


def test_mutated_inputs_never_hang_or_crash_the_proxy():
    rng = random.Random(SEED)
    with origin() as (srv, op), warden_proxy({"allowedDomains": ["127.0.0.1", "[::1]"],
                                               "headTimeoutMs": 500,
                                               "idleTimeoutMs": 2000}) as (s, pp):
        base = seeds(op)
        cases = [mutate(rng, rng.choice(base)) for _ in range(CASES)] + base
        problems = []
        lock = threading.Lock()

        def worker(chunk):
            for payload in chunk:
                p = one(pp, payload)
                if p:
                    with lock:
                        problems.append((p, payload[:120]))
        threads = [threading.Thread(target=worker, args=(cases[i::8],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not problems, problems[:5]
        assert s.proc.poll() is None, "the server died"
        assert s.call("network/policy/get")["allowedDomains"] == ["127.0.0.1", "[::1]"]
        st, _, body = request(pp, b"GET http://127.0.0.1:%d/after HTTP/1.1\r\n\r\n" % op)
        assert (st, body) == (200, b"origin /after"), (st, body)
        print("%d cases, seed %d" % (len(cases), SEED))


if __name__ == "__main__":
    run_tests(globals())
