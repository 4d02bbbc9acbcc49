"""A minimal NBD client on a plain socket (fixed newstyle, the default
export, simple replies): for tests whose clients misbehave (libnbd will not
disconnect in the middle of sending a request), and for benchmarks on
machines without Debian's Python bindings of libnbd."""
import socket
import struct


class NbdError(Exception):
    """The server answered a request with an error (errno in .errno)."""

    def __init__(self, errno, what):
        super().__init__(f"{what}: server error {errno}")
        self.errno = errno


class RawNbdClient:
    REQUEST_MAGIC = 0x25609513
    REPLY_MAGIC = 0x67446698
    CMD_READ, CMD_WRITE, CMD_DISC = 0, 1, 2

    def __init__(self, socket_path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(socket_path))
        self._handle = 0
        self._handshake()

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            part = self.sock.recv(n - len(buf))
            if not part:
                raise ConnectionError("server closed the connection")
            buf += part
        return bytes(buf)

    def _handshake(self):
        hello = self._recv_exact(18)
        assert hello[:16] == b"NBDMAGICIHAVEOPT", hello
        # FIXED_NEWSTYLE | NO_ZEROES
        self.sock.sendall(struct.pack(">I", 3))
        # NBD_OPT_EXPORT_NAME with the default export "".
        self.sock.sendall(b"IHAVEOPT" + struct.pack(">II", 1, 0))
        self.size, self.flags = struct.unpack(">QH", self._recv_exact(10))

    def send_request(self, cmd, offset, length, payload=b"", handle=1):
        header = struct.pack(">IHHQQI", self.REQUEST_MAGIC, 0, cmd, handle, offset, length)
        self.sock.sendall(header + payload)

    def _reply(self, handle, what):
        magic, error, got = struct.unpack(">IIQ", self._recv_exact(16))
        assert magic == self.REPLY_MAGIC and got == handle, (magic, got, handle)
        if error:
            raise NbdError(error, what)

    def pread(self, length, offset):
        self._handle += 1
        self.send_request(self.CMD_READ, offset, length, handle=self._handle)
        self._reply(self._handle, f"read of {length} at {offset}")
        return self._recv_exact(length)

    def pwrite(self, data, offset):
        self._handle += 1
        self.send_request(self.CMD_WRITE, offset, len(data), bytes(data), handle=self._handle)
        self._reply(self._handle, f"write of {len(data)} at {offset}")

    def shutdown(self):
        self.send_request(self.CMD_DISC, 0, 0)
        self.close()

    def close(self):
        self.sock.close()
