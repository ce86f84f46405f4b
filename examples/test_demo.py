"""A first pytest-otto test file.

Run it on this machine:            pytest examples/
Run it on every host of a lab:     pytest examples/ --lab lab.toml
Only on some hosts:                pytest examples/ --lab lab.toml --host-pattern 'router'

Each test that uses ``host`` runs once per host: ``test_kernel_is_linux[router1]``.
"""


def test_kernel_is_linux(host):
    """Sync tests use the blocking twins (``run_sync``)."""
    result = host.run_sync("uname -s")
    assert result, result.only.output
    assert result.only.output == "Linux"


def test_os_release_is_readable(host):
    """A file check: ``oneshot`` runs in a fresh process and returns one status."""
    status = host.oneshot_sync("test -r /etc/os-release && grep -c '^ID=' /etc/os-release")
    assert status.retcode == 0, f"{host.id}: /etc/os-release missing or without ID= ({status.output})"
    assert status.output == "1"


async def test_shell_keeps_its_state(host):
    """Async tests need no decorator; ``run`` shares one shell, so cd and variables persist."""
    await host.run(["cd /tmp", "export OTTO_DEMO=42"])
    result = await host.run("echo $PWD $OTTO_DEMO")
    assert result.only.output == "/tmp 42"
