"""The transport registry and the lab-file validators: one table, small pure checks."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
import tomli_w

import pytest_otto
from pytest_otto import Lab, LabError, LocalHost, lab_values, registry
from pytest_otto.config import HostConfig, LocalConfig, SshConfig, all_host_keys, lab_key, parse_lab
from pytest_otto.lab_values import BadValue, Place, WrongType


@dataclass(frozen=True)
class Power:
    """A per-host section's typed value, as a section's own module would define it."""

    outlet: int

    def to_toml(self) -> dict[str, Any]:
        return {"outlet": self.outlet}


def parse_power(value: object) -> Power:
    if not isinstance(value, dict) or set(value) != {"outlet"}:
        raise ValueError("a power table needs exactly: outlet = <number>")
    return Power(value["outlet"])


@dataclass(frozen=True, kw_only=True)
class LoopConfig(HostConfig):
    """A made-up transport: local shells, with one key of its own."""

    transport: ClassVar[str] = "loop"

    greeting: str = field(default="hi", metadata=lab_key(lab_values.text))


class LoopHost(LocalHost):
    """What a made-up transport builds: a local host that remembers its greeting."""

    @classmethod
    def from_config(cls, config: LoopConfig, lab: object = None) -> LoopHost:
        host = cls(config.id, command_timeout=config.command_timeout)
        host.vars["greeting"] = config.greeting
        return host


@contextlib.contextmanager
def _section_replaced(**options: Any) -> Iterator[registry.SectionEntry]:
    """A test's own "power" section in place of the real one, which comes back after."""
    real = registry._sections.get("power")
    try:
        yield registry.register_section("power", parser=f"{__name__}:parse_power", **options)
    finally:
        registry._sections.pop("power")
        if real is not None:
            registry._sections["power"] = real


@pytest.fixture
def power_section() -> Iterator[registry.SectionEntry]:
    with _section_replaced() as entry:
        yield entry


@pytest.fixture
def loop_transport() -> Iterator[registry.TransportEntry]:
    entry = registry.register_transport("loop", config=f"{__name__}:LoopConfig", host=f"{__name__}:LoopHost")
    try:
        yield entry
    finally:
        registry._transports.pop("loop")


# -- the one table ---------------------------------------------------------------------------


def test_builtin_transports_in_documentation_order() -> None:
    assert [e.name for e in registry.transports()] == ["ssh", "telnet", "serial", "tcp", "local"]
    ssh = registry.transport("ssh")
    assert ssh is not None and ssh.config_class() is SshConfig
    assert ssh.defaults()["port"] == 22 and ssh.defaults()["host_key_check"] == "accept-new"
    assert "address" not in ssh.defaults()  # required: no default
    assert registry.transport("snmp") is None


def test_lazy_host_classes_come_from_the_registry() -> None:
    """``pytest_otto.RemoteHost`` is the registry's ssh host class, imported on first use."""
    for entry in registry.transports():
        assert getattr(pytest_otto, entry.host_class_name) is entry.host_class()
        assert getattr(pytest_otto.hosts, entry.host_class_name) is entry.host_class()
    with pytest.raises(AttributeError, match="no attribute 'NoSuchHost'"):
        pytest_otto.NoSuchHost  # noqa: B018


def test_a_new_transport_is_one_registration(loop_transport: registry.TransportEntry, tmp_path: Path) -> None:
    text = '[defaults]\ngreeting = "hello"\n[hosts.l1]\ntransport = "loop"\n[hosts.l2]\ntransport = "loop"\n'
    text += 'greeting = "moin"\ncommand_timeout = 7\n[hosts.me]\ntransport = "local"\n'
    config = parse_lab(text, tmp_path / "lab.toml")
    l1, l2, me = config.hosts
    assert l1 == LoopConfig(id="l1", greeting="hello") and l2.command_timeout == 7.0
    assert me == LocalConfig(id="me")  # a key of another transport's is left out for a local host
    assert "greeting" in all_host_keys()
    lab = Lab.from_config(config)
    try:
        assert isinstance(lab["l2"], LoopHost) and lab["l2"].vars["greeting"] == "moin"
        assert lab["l1"].run_sync("echo $((6 * 7))").only.output == "42"  # a real local bash
    finally:
        lab.close_sync()
    with pytest.raises(LabError, match="'greeting': not valid for transport 'local' \\(only for loop\\)"):
        parse_lab('[hosts.me]\ntransport = "local"\ngreeting = "x"\n')
    with pytest.raises(LabError, match=r"unknown transport 'lop'; one of .*loop \(did you mean 'loop'\?\)"):
        parse_lab('[hosts.x]\ntransport = "lop"\n')


def test_a_section_is_one_registration(power_section: registry.SectionEntry, tmp_path: Path) -> None:
    text = '[defaults]\npower = { outlet = 1 }\n[hosts.a]\naddress = "a"\n[hosts.a.power]\noutlet = 4\n'
    text += '[hosts.b]\ntransport = "serial"\ndevice = "/dev/ttyS0"\n'
    config = parse_lab(text, tmp_path / "lab.toml")
    a, b = config.hosts
    assert a.sections == {"power": Power(4)} and b.sections == {"power": Power(1)}  # [defaults] applies
    again = parse_lab(tomli_w.dumps(config.to_toml()), tmp_path / "lab.toml")
    assert again.hosts == config.hosts  # written back as the file had it
    built_in_code = SshConfig(id="c", address="c", sections={"power": Power(2)})
    assert built_in_code.to_toml() == {"address": "c", "power": {"outlet": 2}}
    with pytest.raises(LabError) as info:
        parse_lab('[hosts.a]\naddress = "a"\npower = { socket = 1 }\n', tmp_path / "lab.toml")
    assert (info.value.host_id, info.value.key) == ("a", "power")
    assert "a power table needs exactly: outlet = <number>" in str(info.value)


def test_a_section_only_some_transports_have(tmp_path: Path) -> None:
    with _section_replaced(transports=("serial",)):
        with pytest.raises(
            LabError, match="key 'power': not valid for transport 'ssh' \\(only for serial\\)"
        ):
            parse_lab('[hosts.a]\naddress = "a"\npower = { outlet = 1 }\n')
        text = '[defaults]\npower = { outlet = 3 }\n[hosts.a]\naddress = "a"\n'
        text += '[hosts.s]\ntransport = "serial"\ndevice = "/dev/ttyS0"\n'
        a, s = parse_lab(text).hosts
        assert a.sections == {} and s.sections == {"power": Power(3)}


def test_the_registry_imports_no_transport_code() -> None:
    """Reading the table (keys, config classes) does not load asyncssh or console code."""
    code = (
        "import sys, pytest_otto.config as c; c.all_host_keys(); c.parse_lab('[hosts.a]\\naddress=\"x\"\\n');"
        " print(sorted(m for m in ('asyncssh', 'pytest_otto.hosts.ssh', 'pytest_otto.hosts.console')"
        " if m in sys.modules))"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- validators: one small function per kind of value, no lab file needed -----------------------


PLACE = Place(Path("/labs/lab.toml"), Path("/labs"))


@pytest.mark.parametrize(
    ("validator", "value", "expected"),
    [
        (lab_values.text, "x", "x"),
        (lab_values.regex, r"(?i)login:\s*$", r"(?i)login:\s*$"),
        (lab_values.path, "keys/id", Path("/labs/keys/id")),
        (lab_values.path, "/abs/id", Path("/abs/id")),
        (lab_values.boolean, False, False),
        (lab_values.int_range(1, 65535), 65535, 65535),
        (lab_values.line_limit, 0, 0),
        (lab_values.line_limit, 64, 64),
        (lab_values.timeout, 3, 3.0),
        (lab_values.timeout, float("inf"), float("inf")),
        (lab_values.delay, 0, 0.0),
        (lab_values.tags, ["a", "b"], ("a", "b")),
        (lab_values.table, {"k": 1}, {"k": 1}),
        (lab_values.choice("strict", "off"), "off", "off"),
    ],
)
def test_validators_accept_and_normalise(
    validator: lab_values.Validator, value: object, expected: object
) -> None:
    got = validator(value, PLACE)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("validator", "value", "error", "says"),
    [
        (lab_values.text, "", WrongType, "a non-empty string"),
        (lab_values.text, 3, WrongType, "a non-empty string"),
        (lab_values.regex, "(", BadValue, "not a valid regular expression"),
        (lab_values.path, 1, WrongType, "a non-empty path string"),
        (lab_values.boolean, "yes", WrongType, "true or false"),
        (lab_values.int_range(1, 65535), 0, BadValue, "0 is out of range (1..65535)"),
        (lab_values.int_range(1), 0, BadValue, "0 is out of range (>= 1)"),
        (lab_values.int_range(1), True, WrongType, "an integer"),
        (lab_values.line_limit, 10, BadValue, "at least 64 bytes, or 0 for no limit"),
        (lab_values.timeout, 0, BadValue, "must be positive (inf for no bound)"),
        (lab_values.timeout, float("nan"), BadValue, "nan is not a number of seconds"),
        (lab_values.delay, float("inf"), BadValue, "zero or a positive finite number"),
        (lab_values.delay, "1", WrongType, "a number of seconds"),
        (lab_values.tags, ["a", ""], BadValue, "each tag must be a non-empty string"),
        (lab_values.table, [], WrongType, "a table"),
        (lab_values.choice("strict", "off"), "of", BadValue, "'of' is not one of strict, off"),
    ],
)
def test_validators_refuse_with_the_reason(
    validator: lab_values.Validator, value: object, error: type[Exception], says: str
) -> None:
    with pytest.raises(error) as info:
        validator(value, PLACE)
    assert says in str(info.value)
