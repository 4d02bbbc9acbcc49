"""Boot Debian's kernel under qemu (TCG) and run one test script inside it.

The guest is a busybox initramfs that loads the virtio, 9p, nbd and ext4
modules of the unpacked linux-image package, mounts the host's root
read-only over virtio-9p, chroots into it and runs
tests/vm/guest/<script> with bash.  So every program the guest runs
(nbdkit, nbd-client, stress-ng, mkfs.ext4, python3) is the host's own
Debian package, and the plugin and the test CUDA driver are this
repository's build.  Four 9p exports:

  hostroot  /                      read-only, the guest's root
  repo      this repository        read-only, at /mnt/repo in the guest
  build     VRAM_BUILD_DIR         read-only, at /mnt/build
  out       the run's result dir   read-write, at /mnt/out

The fake VRAM is an ivshmem PCI device backed by a file in /dev/shm on the
host: outside the guest's RAM, and readable by the host while the guest
runs.  The test CUDA driver in the guest maps its BAR (resource2) as device
memory.

A run always ends: qemu is killed at a wall-clock bound, and earlier when
the console shows a hung task, an oops or panic, or an I/O error the test
did not expect.  Standard library only (run with /usr/bin/python3).

    python3 tests/vm/harness.py pressure.sh [NAME=VALUE ...]

runs one guest script by hand, echoing the console.  NAME=VALUE pairs
become the script's VMTEST_NAME, except TIMEOUT (seconds, default 600),
SMP (vCPUs, 2), RAM (the guest's, 512M), HUNG_TASK_TIMEOUT (10) and
EXPECT_IO_ERRORS=1, which are the harness's.
"""
import json
import lzma
import os
import re
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GUEST_DIR = HERE / "guest"
BUILD = Path(os.environ.get("VRAM_BUILD_DIR", REPO / "build")).resolve()
PLUGIN = BUILD / "plugin" / "nbdkit-vram-plugin.so"
FAKECUDA = BUILD / "tests" / "fakecuda" / "libcuda.so.1"
LOG_DIR = Path(os.environ.get("VRAM_VM_LOG_DIR", BUILD / "vm-logs")).resolve()
KERNEL_CACHE = Path(os.environ.get(
    "VRAM_VM_KERNEL_CACHE",
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nbdkit-vram" / "vm-kernel"))
QEMU = os.environ.get("VRAM_VM_QEMU", "qemu-system-x86_64")
BUSYBOX = Path(os.environ.get("VRAM_VM_BUSYBOX", "/bin/busybox"))

# Loaded in dependency order (computed from the modules themselves).
# crc32c_generic: ext4's metadata checksums; the guest cannot load modules
# on demand (no modprobe in the host root image to speak of).
GUEST_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "nbd", "ext4", "crc32c_generic")
# More, for a run that needs them (zram_corpus.sh: "zram lz4 zstd").
EXTRA_MODULES = tuple(os.environ.get("VRAM_VM_EXTRA_MODULES", "").split())
MODULE_ARGS = {"nbd": "nbds_max=4"}

# What the console says when the guest is in trouble.  A hang is a task
# stuck in D state (the hung-task detector), or the nbd driver giving up on
# a request the server has not answered for its timeout (30 s).
HANG_PATTERNS = ("blocked for more than", "INFO: task ", "Possible stuck request",
                 "Connection timed out, retrying", "Dead connection, failed to find a fallback")
CRASH_PATTERNS = ("Oops", "BUG:", "Kernel panic", "general protection fault",
                  "kernel BUG at", "Unable to handle kernel")
IO_ERROR_PATTERNS = ("I/O error", "Other side returned error", "Read-error on swap-device",
                     "Write-error on swap-device", "EXT4-fs error")
OOM_PATTERNS = ("invoked oom-killer", "Out of memory:")

# After a hang or crash is seen, keep reading this long so the log gets the
# stack traces the kernel prints after the headline.
GRACE_S = float(os.environ.get("VRAM_VM_GRACE", 4.0))
# Alt-SysRq keys pressed when a hang is seen: t shows every task's state
# and kernel stack, then the workqueues and what their workers run (w:
# blocked tasks only); l, what each CPU runs, is always added.
SYSRQ_ON_HANG = os.environ.get("VRAM_VM_SYSRQ", "t")
# After a hang, how long to wait for the guest's vm-hangdump (started by
# guest/lib.sh beside nbdkit) to finish its dump ("hangdump: end").
HANGDUMP_WAIT_S = float(os.environ.get("VRAM_VM_HANGDUMP_WAIT", 30.0))


class Unavailable(Exception):
    """Something the VM tests need is missing; the message says what."""


@dataclass
class Kernel:
    vmlinuz: Path
    moddir: Path
    version: str


def find_kernel():
    """The unpacked linux-image package: VRAM_VM_KERNEL_DIR, else the cache
    fetch-kernel.sh fills, else an installed Debian kernel."""
    roots = []
    if os.environ.get("VRAM_VM_KERNEL_DIR"):
        roots.append(Path(os.environ["VRAM_VM_KERNEL_DIR"]))
    else:
        roots += [KERNEL_CACHE / "current", Path("/")]
    for root in roots:
        for vmlinuz in sorted(root.glob("boot/vmlinuz-*-amd64"), reverse=True):
            version = vmlinuz.name[len("vmlinuz-"):]
            moddir = root / "lib" / "modules" / version
            if (moddir / "kernel").is_dir() and os.access(vmlinuz, os.R_OK):
                return Kernel(vmlinuz, moddir, version)
    raise Unavailable(
        "no Debian linux-image-*-amd64 kernel: run `bash tests/vm/fetch-kernel.sh` "
        f"(tests/run.sh does), or set VRAM_VM_KERNEL_DIR (looked in {', '.join(map(str, roots))})")


def check_tools():
    """Raises Unavailable unless qemu, a static busybox and the build exist."""
    if not shutil.which(QEMU):
        raise Unavailable(f"{QEMU} not found (Debian package qemu-system-x86)")
    if not BUSYBOX.exists():
        raise Unavailable(f"{BUSYBOX} not found (Debian package busybox-static)")
    if _elf_interp(BUSYBOX):
        raise Unavailable(f"{BUSYBOX} is dynamically linked: install busybox-static")
    for tool in ("nbdkit", "nbd-client", "nbdinfo", "stress-ng", "mkfs.ext4", "blkdiscard"):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
            raise Unavailable(f"{tool} not found on the host (the guest runs the host's)")
    for f in (PLUGIN, FAKECUDA):
        if not f.exists():
            raise Unavailable(f"{f} not found: build first, or set VRAM_BUILD_DIR")


def _elf_interp(path):
    """True if the ELF file has a program interpreter (is dynamic)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return any(struct.unpack_from("<I", table, i * phentsize)[0] == 3  # PT_INTERP
               for i in range(phnum))


# ---------------------------------------------------------------- modules

def _module_bytes(path):
    data = path.read_bytes()
    return lzma.decompress(data) if path.name.endswith(".xz") else data


def _modinfo(data):
    """The key=value pairs of a kernel module's .modinfo section."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a little-endian ELF64 module")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(i):
        name, _type, _flags, _addr, offset, size = struct.unpack_from(
            "<IIQQQQ", data, shoff + i * shentsize)
        return name, offset, size

    _, stroff, _ = section(shstrndx)
    info = {}
    for i in range(shnum):
        name, offset, size = section(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end] == b".modinfo":
            for item in data[offset:offset + size].split(b"\0"):
                key, sep, value = item.partition(b"=")
                if sep:
                    info.setdefault(key.decode(), []).append(value.decode())
    return info


def module_load_order(moddir, wanted):
    """[(path, name)] for `wanted` and everything they depend on, each
    after its dependencies."""
    index = {}
    for p in (moddir / "kernel").rglob("*.ko*"):
        name = p.name.split(".ko")[0].replace("-", "_")
        index.setdefault(name, p)
    order, seen = [], set()

    def visit(name, chain):
        if name in seen:
            return
        if name in chain:
            raise Unavailable(f"module dependency loop: {' -> '.join(chain + [name])}")
        path = index.get(name)
        if path is None:
            raise Unavailable(f"kernel module {name} not found under {moddir}")
        deps = _modinfo(_module_bytes(path)).get("depends", [""])[0]
        for dep in filter(None, deps.split(",")):
            visit(dep.replace("-", "_"), chain + [name])
        seen.add(name)
        order.append((path, name))

    for name in wanted:
        visit(name, [])
    return order


# -------------------------------------------------------------- initramfs

def _cpio_entry(name, mode, data=b"", rdev=(0, 0), ino=[0]):
    ino[0] += 1
    fields = (ino[0], mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0)
    head = b"070701" + b"".join(b"%08X" % v for v in fields) + name.encode() + b"\0"
    head += b"\0" * (-len(head) % 4)
    return head + data + b"\0" * (-len(data) % 4)


# ------------------------------------------------------------ kernel image

def _has_pvh_note(elf):
    """True if the ELF64 image carries the PVH entry point note (a "Xen"
    note of type 18, XEN_ELFNOTE_PHYS32_ENTRY), which lets qemu's -kernel
    start it directly."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        return False
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        p_type, _flags, offset, _vaddr, _paddr, filesz = struct.unpack_from(
            "<IIQQQQ", elf, phoff + i * phentsize)
        if p_type != 4:  # PT_NOTE
            continue
        pos, end = offset, min(offset + filesz, len(elf))
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12:pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == 18:
                return True
            pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def boot_image(kernel, workdir):
    """What qemu's -kernel boots: the kernel's own uncompressed ELF image,
    taken out of the vmlinuz once (cached in workdir), when it has a PVH
    entry note; else the vmlinuz itself.  Under TCG a vmlinuz spends about
    3 s decompressing itself before the kernel starts (Debian's are xz);
    the ELF starts within half a second.  Same kernel either way."""
    st = kernel.vmlinuz.stat()
    dest = workdir / f"vmlinux-{kernel.version}"
    stampfile = workdir / f"vmlinux-{kernel.version}.source"
    stamp = f"{kernel.vmlinuz} {st.st_size} {st.st_mtime_ns}"
    if dest.exists() and stampfile.exists() and stampfile.read_text() == stamp:
        return dest
    data = kernel.vmlinuz.read_bytes()
    start = data.find(b"\xfd7zXZ\x00")
    if start < 0:
        return kernel.vmlinuz
    try:
        elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[start:])
    except lzma.LZMAError:
        return kernel.vmlinuz
    if not _has_pvh_note(elf):
        return kernel.vmlinuz
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = workdir / f"vmlinux-{kernel.version}.{os.getpid()}.tmp"
    tmp.write_bytes(elf)
    tmp.rename(dest)
    stampfile.write_text(stamp)
    return dest


def build_initramfs(kernel, dest):
    """A newc cpio: static busybox, the modules and their load order, and
    tests/vm/guest/init as /init."""
    modules = module_load_order(kernel.moddir, GUEST_MODULES + EXTRA_MODULES)
    parts = []
    for d in ("bin", "dev", "proc", "sys", "newroot", "modules"):
        parts.append(_cpio_entry(d, 0o040755))
    # The kernel opens /dev/console for init before anything is mounted.
    parts.append(_cpio_entry("dev/console", 0o020600, rdev=(5, 1)))
    parts.append(_cpio_entry("bin/busybox", 0o100755, BUSYBOX.read_bytes()))
    parts.append(_cpio_entry("init", 0o100755, (GUEST_DIR / "init").read_bytes()))
    lines = []
    for path, name in modules:
        parts.append(_cpio_entry(f"modules/{name}.ko", 0o100644, _module_bytes(path)))
        lines.append(f"{name}.ko {MODULE_ARGS.get(name, '')}".rstrip())
    parts.append(_cpio_entry("modules/order", 0o100644, ("\n".join(lines) + "\n").encode()))
    parts.append(_cpio_entry("TRAILER!!!", 0))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")  # two runs at once may build it
    tmp.write_bytes(b"".join(parts))
    tmp.rename(dest)
    return dest


# -------------------------------------------------------------------- run

@dataclass
class VmResult:
    name: str
    verdict: str            # pass fail hang crash io-error timeout no-result qemu-error
    reason: str
    elapsed: float          # seconds, qemu start to end
    boot_s: float | None    # seconds until the test script started
    result: dict            # the guest's result.json ({} if none)
    events: list            # [(seconds, kind, console line)]
    log: Path
    outdir: Path
    hostchecks: dict = field(default_factory=dict)

    @property
    def figures(self):
        return self.result.get("figures", {})

    def first(self, kind):
        """Seconds at which the first event of this kind was seen, or None."""
        return next((t for t, k, _ in self.events if k == kind), None)

    def first_line(self, kind):
        """The console line of the first event of this kind, or None."""
        return next((line for _, k, line in self.events if k == kind), None)

    def summary(self):
        return (f"{self.name}: {self.verdict} ({self.reason}) in {self.elapsed:.1f}s; "
                f"log {self.log}")

    def console_tail(self, lines=150):
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class Vm:
    """Knows the kernel and the initramfs; run() boots one guest."""

    def __init__(self, kernel=None, workdir=None):
        check_tools()
        self.kernel = kernel or find_kernel()
        self.workdir = Path(workdir or LOG_DIR)
        self.initrd = build_initramfs(self.kernel, self.workdir / "initrd.cpio")
        self.image = boot_image(self.kernel, self.workdir)

    def command(self, outdir, shm, monitor, ram, smp, vram, cmdline_extra="", dumpsock=None):
        cmdline = ("console=ttyS0,115200 panic=-1 softlockup_panic=0 hung_task_panic=0 "
                   "oops=continue loglevel=7 rdinit=/init " + cmdline_extra).strip()
        cmd = [QEMU, "-machine", "pc,accel=tcg", "-cpu", "qemu64", "-smp", str(smp), "-m", ram,
               "-nodefaults", "-display", "none", "-serial", "stdio",
               # ttyS1: the harness asks the guest's vm-hangdump for a dump.
               "-serial", f"unix:{dumpsock or monitor.with_name('hangdump')},server=on,wait=off",
               "-no-reboot",
               "-monitor", f"unix:{monitor},server=on,wait=off",
               "-kernel", str(self.image), "-initrd", str(self.initrd),
               "-append", cmdline,
               "-object", f"memory-backend-file,id=vram,size={vram},share=on,mem-path={shm}",
               "-device", "ivshmem-plain,memdev=vram"]
        exports = (("hostroot", "/", True), ("repo", REPO, True), ("build", BUILD, True),
                   ("out", outdir, False))
        for tag, path, ro in exports:
            cmd += ["-fsdev", f"local,id={tag},path={path},security_model=none,multidevs=remap"
                    + (",readonly=on" if ro else ""),
                    "-device", f"virtio-9p-pci,fsdev={tag},mount_tag={tag}"]
        return cmd

    def run(self, name, script, *, params=None, timeout=300, expect_io_errors=False,
            ram="512M", smp=2, vram="1G", hung_task_timeout=10, hostcheck=None,
            echo=None, stop_on_hang=True):
        """Boots a guest that runs tests/vm/guest/<script>; returns a VmResult.

        params: NAME=value pairs for the script (exported as VMTEST_NAME).
        hostcheck(name, args, shm_path) -> (ok, detail): answers the
        script's `hostcheck` requests (see guest/lib.sh) while it waits.
        """
        if echo is None:
            echo = bool(os.environ.get("VRAM_VM_ECHO"))
        outdir = self.workdir / name
        shutil.rmtree(outdir, ignore_errors=True)
        outdir.mkdir(parents=True)
        log_path = self.workdir / f"{name}.log"
        shm = Path("/dev/shm") / f"nbdkit-vram-vmtest-{os.getpid()}-{name}"
        env = {"SCRIPT": script, "HUNG_TASK_TIMEOUT": hung_task_timeout,
               "EXPECT_IO_ERRORS": int(expect_io_errors)}
        env.update(params or {})
        with open(outdir / "vmtest.env", "w") as f:
            for k, v in env.items():
                f.write(f"VMTEST_{k}={shlex.quote(str(v))}\n")

        mondir = Path(tempfile.mkdtemp(prefix="vmtest-"))
        monitor = mondir / "monitor"
        dumpsock = mondir / "hangdump"
        cmd = self.command(outdir, shm, monitor, ram, smp, vram, dumpsock=dumpsock)
        events, hostchecks = [], {}
        verdict = reason = None
        boot_s = None
        stop_at = None
        dumper = False  # the guest's vm-hangdump is running
        start = time.monotonic()
        deadline = start + timeout
        with open(log_path, "w") as log:
            log.write("# " + " ".join(shlex.quote(c) for c in cmd) + "\n")
            log.write(f"# guest script {script}, params {env}, timeout {timeout}s\n")
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_die_with_parent)
            partial = b""
            try:
                while True:
                    now = time.monotonic()
                    if stop_at is not None and now >= stop_at:
                        break
                    if now >= deadline and stop_at is None:
                        # Out of time: say what the guest is doing, then stop.
                        verdict = verdict or "timeout"
                        reason = reason or f"no result after {timeout}s (wall-clock bound)"
                        events.append((now - start, "timeout", ""))
                        for key in SYSRQ_ON_HANG + "l":
                            self._sysrq(monitor, key, log)
                        stop_at = now + GRACE_S
                        if dumper and self._ask_for_dump(dumpsock, log):
                            stop_at += HANGDUMP_WAIT_S
                        deadline = stop_at
                    wait = min(deadline, stop_at or deadline) - now
                    ready, _, _ = select.select([proc.stdout], [], [], max(0.0, min(wait, 1.0)))
                    if not ready:
                        continue
                    chunk = os.read(proc.stdout.fileno(), 65536)
                    if not chunk:
                        break
                    lines = (partial + chunk).split(b"\n")
                    partial = lines.pop()
                    for raw in lines:
                        t = time.monotonic() - start
                        line = raw.decode("utf-8", "replace").rstrip("\r")
                        log.write(f"{t:7.1f} {line}\n")
                        if echo:
                            print(f"{t:7.1f} {line}", file=sys.stderr, flush=True)
                        kind = classify(line, expect_io_errors)
                        if kind:
                            events.append((t, kind, line))
                        if kind in ("hang", "crash", "io-error") and verdict is None:
                            verdict = kind
                            reason = f"{kind} at {t:.1f}s: {line.strip()}"
                            if kind != "hang" or stop_on_hang:
                                stop_at = time.monotonic() + GRACE_S
                            if kind == "hang":
                                # Every task, not only the first blocked one,
                                # what each CPU runs (a task stuck in reclaim
                                # is running, not blocked), and nbdkit's own
                                # view, which the dump ends by saying.
                                for key in SYSRQ_ON_HANG + "l":
                                    self._sysrq(monitor, key, log)
                                if dumper and self._ask_for_dump(dumpsock, log) \
                                        and stop_at is not None:
                                    stop_at += HANGDUMP_WAIT_S
                        if "hangdump: watching" in line:
                            dumper = True
                        elif "hangdump: nbdkit pid" in line and "has exited" in line:
                            dumper = False
                        if "hangdump: end" in line and stop_at is not None:
                            stop_at = min(stop_at, time.monotonic() + GRACE_S)
                        if "VMTEST BOOTED" in line and boot_s is None:
                            boot_s = t
                        m = re.search(r"VMTEST HOSTCHECK (\S+)(.*)", line)
                        if m:
                            self._hostcheck(hostcheck, m.group(1), m.group(2).split(),
                                            shm, outdir, hostchecks, log)
                    log.flush()
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                rc = proc.wait()
                rest = proc.stdout.read() if not proc.stdout.closed else b""
                if partial or rest:
                    log.write(f"{time.monotonic() - start:7.1f} "
                              f"{(partial + (rest or b'')).decode('utf-8', 'replace')}\n")
                log.write(f"# qemu exit status {rc}, {time.monotonic() - start:.1f}s\n")
                elapsed = time.monotonic() - start
                try:
                    shm.unlink()
                except FileNotFoundError:
                    pass
                shutil.rmtree(mondir, ignore_errors=True)

        result = {}
        try:
            result = json.loads((outdir / "result.json").read_text())
        except (OSError, ValueError):
            pass
        if verdict is None:
            if not result:
                verdict, reason = ("qemu-error", f"qemu exited with {rc} and no result") \
                    if rc not in (0, -9) else ("no-result", "the guest wrote no result.json")
            else:
                verdict = "pass" if result.get("status") == "pass" else "fail"
                reason = result.get("detail", "")
        return VmResult(name, verdict, reason, elapsed, boot_s, result, events, log_path,
                        outdir, hostchecks)

    @staticmethod
    def _sysrq(monitor, key, log):
        """Presses Alt-SysRq-KEY on the guest's keyboard (through the qemu
        monitor): the kernel prints to the console even when userspace is
        stuck.  The guest's init enables sysrq."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(str(monitor))
                s.sendall(f"sendkey alt-sysrq-{key}\n".encode())
                time.sleep(0.2)
            log.write(f"# harness: sent Alt-SysRq-{key.upper()}\n")
        except OSError as e:
            log.write(f"# harness: could not send sysrq-{key}: {e}\n")

    @staticmethod
    def _ask_for_dump(dumpsock, log):
        """Writes a line to the guest's ttyS1, where vm-hangdump waits for
        one (if the script started it).  True if it was sent."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(str(dumpsock))
                s.sendall(b"dump\n")
                time.sleep(0.2)
            log.write("# harness: asked the guest's vm-hangdump for a dump\n")
            return True
        except OSError as e:
            log.write(f"# harness: could not ask for a dump: {e}\n")
            return False

    @staticmethod
    def _hostcheck(handler, name, args, shm, outdir, done, log):
        """Answers a guest's hostcheck request once; the guest polls for
        out/hostcheck-NAME."""
        if name in done:
            return
        try:
            ok, detail = handler(name, args, shm) if handler else (False, "no host handler")
        except Exception as e:  # a broken check fails the test, not the harness
            ok, detail = False, f"host check raised {e!r}"
        done[name] = (ok, detail)
        log.write(f"# hostcheck {name} {args}: {'ok' if ok else 'FAIL'} {detail}\n")
        tmp = outdir / f".hostcheck-{name}"
        tmp.write_text(f"{'ok' if ok else 'fail'} {detail}\n")
        tmp.rename(outdir / f"hostcheck-{name}")


def check_vram_ranges(name, args, shm):
    """A hostcheck handler: the fake VRAM file holds what the guest says.
    args: base=BYTES (where the export starts in the BAR), then
    SEED:OFFSET:LENGTH ranges of the export in blockcheck.py's pattern;
    seed 0 means zeroes.  Returns (ok, detail)."""
    sys.path.insert(0, str(GUEST_DIR))
    import blockcheck
    if not args or not args[0].startswith("base="):
        return False, f"{name}: no base= argument"
    base = int(args[0][len("base="):])
    step = 16 << 20
    bad = []
    with open(shm, "rb") as f:
        for spec in args[1:]:
            seed, off, length = spec.split(":")
            seed, off, length = int(seed), blockcheck.size(off), blockcheck.size(length)
            for chunk in range(off, off + length, step):
                n = min(step, off + length - chunk)
                f.seek(base + chunk)
                data = f.read(n)
                if seed == 0:
                    at = next((i for i in range(0, n, 4096)
                               if data[i:i + 4096] != bytes(4096)), None)
                    if at is not None:
                        bad.append(f"{spec}: not zero at {chunk + at:#x} "
                                   f"({blockcheck.describe(data[at:at + 4096])})")
                        break
                else:
                    at = blockcheck.first_bad_block(data, chunk, seed)
                    if at is not None:
                        i = at - chunk
                        bad.append(f"{spec}: block {at:#x} holds "
                                   f"{blockcheck.describe(data[i:i + 4096])}")
                        break
    if bad:
        return False, "; ".join(bad)
    return True, f"{len(args) - 1} ranges as expected at BAR offset {base}"


def _die_with_parent():
    """In qemu's child: SIGKILL it when the harness dies, however it dies."""
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def classify(line, expect_io_errors=False):
    """hang / crash / io-error / oom / None for one console line."""
    if "VMTEST" in line:  # the harness protocol, not the kernel
        return None
    # vm-hangdump's own lines (the files it dumps could hold anything),
    # unless a kernel line ran into one on the console.
    if line.startswith("hangdump: ") and not re.search(r"\[\s*\d+\.\d+\]", line):
        return None
    if any(p in line for p in HANG_PATTERNS):
        return "hang"
    if any(p in line for p in CRASH_PATTERNS):
        return "crash"
    if any(p in line for p in IO_ERROR_PATTERNS):
        return "io-error-expected" if expect_io_errors else "io-error"
    if any(p in line for p in OOM_PATTERNS):
        return "oom"
    return None


def main(argv):
    if len(argv) < 2 or argv[1].startswith("-"):
        print(__doc__)
        return 2
    script = argv[1]
    params = dict(a.split("=", 1) for a in argv[2:] if "=" in a)
    # Harness settings; everything else is for the script.
    timeout = int(params.pop("TIMEOUT", 600))
    expect_io_errors = params.pop("EXPECT_IO_ERRORS", "0") == "1"
    smp = int(params.pop("SMP", 2))
    hung = int(params.pop("HUNG_TASK_TIMEOUT", 10))
    ram = params.pop("RAM", "512M")
    vm = Vm()
    r = vm.run(Path(script).stem, script, params=params, timeout=timeout, echo=True,
               expect_io_errors=expect_io_errors, smp=smp, hung_task_timeout=hung,
               ram=ram, hostcheck=check_vram_ranges)
    print(r.summary())
    print(json.dumps(r.result, indent=1))
    return 0 if r.verdict == "pass" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
