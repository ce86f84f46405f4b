"""The lab file loader (docs/lab-file.md, B27): every error path, secrets, round-trips."""

from __future__ import annotations

import math
import string
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_otto.config import (
    LabConfig,
    LabError,
    LocalConfig,
    Secret,
    SerialConfig,
    SshConfig,
    TelnetConfig,
    all_host_keys,
    load_lab_config,
    parse_lab,
)

ROOT = Path(__file__).resolve().parent.parent
SPEC_EXAMPLE = """
[lab]
name = "bench-a"

[defaults]
user = "root"
connect_timeout = 10.0
command_timeout = 60.0

[hosts.router1]
transport = "ssh"
address = "192.0.2.10"
port = 22
user = "admin"
password = { env = "ROUTER1_PASSWORD" }
key = "~/.ssh/lab_ed25519"
host_key_check = "accept-new"
hop = "jumpbox"
tags = ["router", "edge"]

[hosts.router1.vars]
mgmt_vlan = 10

[hosts.jumpbox]
address = "192.0.2.1"

[hosts.dut1]
transport = "serial"
device = "/dev/ttyUSB0"
baud = 115200
user = "root"
password = { env = "DUT1_PASSWORD" }

[hosts.switch-a]
transport = "telnet"
address = "192.0.2.20"

[hosts.me]
transport = "local"
"""

LAB = Path("/labs/bench/lab.toml")


def error_of(text: str, path: Path = LAB) -> LabError:
    with pytest.raises(LabError) as info:
        parse_lab(text, path)
    return info.value


def host_error(table: str, host_id: str = "h1") -> LabError:
    return error_of(f"[hosts.{host_id}]\n{table}\n")


# -- the spec's example ------------------------------------------------------------


def test_spec_example_loads_with_every_value() -> None:
    lab = parse_lab(SPEC_EXAMPLE, LAB)
    assert lab.name == "bench-a"
    assert lab.path == LAB
    assert lab.ids == ["router1", "jumpbox", "dut1", "switch-a", "me"]  # file order
    router = lab.host("router1")
    assert router.transport == "ssh"
    assert router.address == "192.0.2.10"
    assert router.port == 22
    assert router.user == "admin"  # the host's own key wins over [defaults]
    assert router.password == Secret.from_env("ROUTER1_PASSWORD")
    assert router.key == Path("~/.ssh/lab_ed25519").expanduser()
    assert router.hop == "jumpbox"
    assert router.tags == ("router", "edge")
    assert router.vars == {"mgmt_vlan": 10}
    jump = lab.host("jumpbox")
    assert (jump.transport, jump.port, jump.user) == ("ssh", 22, "root")  # defaults merged under
    assert jump.host_key_check == "accept-new" and jump.agent is True
    dut = lab.host("dut1")
    assert (dut.transport, dut.device, dut.baud) == ("serial", Path("/dev/ttyUSB0"), 115200)
    switch = lab.host("switch-a")
    assert (switch.transport, switch.port, switch.user) == ("telnet", 23, "root")
    me = lab.host("me")
    assert me.transport == "local" and isinstance(me, LocalConfig)
    assert not hasattr(me, "user")  # [defaults] user does not apply to a local host
    assert me.command_timeout == 60.0 and me.connect_timeout == 10.0


def test_builtin_defaults() -> None:
    cfg = parse_lab('[hosts.a]\naddress = "x"\n').hosts[0]
    assert cfg == SshConfig(id="a", address="x", port=22)
    assert cfg.connect_timeout == 10.0
    assert cfg.command_timeout == 60.0
    assert cfg.keepalive_interval == 15.0
    assert cfg.max_output == 256 * 1024 * 1024
    serial = parse_lab('[hosts.s]\ntransport = "serial"\ndevice = "/dev/ttyS0"\n').hosts[0]
    assert isinstance(serial, SerialConfig) and serial.write_delay == 0.0
    assert serial.baud == 115200 and not hasattr(serial, "port")


def test_lab_name_defaults_to_the_file_stem() -> None:
    assert parse_lab("", Path("/x/bench-7.toml")).name == "bench-7"
    assert parse_lab("").hosts == []


def test_relative_paths_are_relative_to_the_lab_folder(tmp_path: Path) -> None:
    text = (
        '[hosts.a]\naddress = "x"\nkey = "keys/id"\nknown_hosts = "/abs/kh"\n'
        '[hosts.s]\ntransport = "serial"\ndevice = "tty0"\n'
    )
    lab = parse_lab(text, tmp_path / "lab.toml")
    assert lab.host("a").key == tmp_path.resolve() / "keys" / "id"
    assert lab.host("a").known_hosts == Path("/abs/kh")
    assert lab.host("s").device == tmp_path.resolve() / "tty0"


def test_defaults_merge_and_host_wins() -> None:
    text = """
[defaults]
transport = "telnet"
port = 2323
command_timeout = 5
tags = ["all"]
[hosts.a]
address = "a"
[hosts.b]
address = "b"
port = 23
tags = ["mine"]
[hosts.c]
transport = "ssh"
address = "c"
"""
    lab = parse_lab(text)
    a, b, c = lab.hosts
    assert (a.transport, a.port, a.command_timeout, a.tags) == ("telnet", 2323, 5.0, ("all",))
    assert (b.port, b.tags) == (23, ("mine",))
    assert (c.transport, c.port) == ("ssh", 2323)
    assert isinstance(a.command_timeout, float)


def test_defaults_keys_that_do_not_apply_to_a_transport_are_ignored() -> None:
    text = '[defaults]\ndevice = "/dev/ttyS0"\nhop = "j"\nwrite_delay = 0.1\n'
    text += '[hosts.me]\ntransport = "local"\n'
    me = parse_lab(text).hosts[0]
    assert me == LocalConfig(id="me")  # a local host has none of those keys


def test_extra_keys_of_consoles_and_ssh() -> None:
    text = """
[hosts.t]
transport = "telnet"
address = "t"
login_prompt = "[Ll]ogin: ?$"
password_prompt = "assword: ?$"
write_delay = 0.01
[hosts.s]
address = "s"
agent = false
known_hosts = "/tmp/kh"
host_key_check = "strict"
keepalive_interval = 0
max_output = 1024
"""
    t, s = parse_lab(text).hosts
    assert (t.login_prompt, t.password_prompt, t.write_delay) == ("[Ll]ogin: ?$", "assword: ?$", 0.01)
    assert (s.agent, s.known_hosts, s.host_key_check) == (False, Path("/tmp/kh"), "strict")
    assert (s.keepalive_interval, s.max_output) == (0.0, 1024)


def test_infinite_command_timeout_is_allowed() -> None:
    cfg = parse_lab('[hosts.a]\ntransport = "local"\ncommand_timeout = inf\n').hosts[0]
    assert math.isinf(cfg.command_timeout)


# -- error paths -------------------------------------------------------------------------


def test_bad_toml_names_the_file_the_line_the_host_and_the_key() -> None:
    err = error_of('[lab]\nname = "x"\n[hosts.a]\ntransport = "ssh"\naddress = "x\n')
    assert str(LAB) in str(err)
    assert "invalid TOML" in str(err)
    assert "line 5" in str(err)
    assert (err.path, err.host_id, err.key) == (LAB, "a", "address")
    assert str(err).startswith(f"{LAB}: host 'a': key 'address': invalid TOML")


@pytest.mark.parametrize(
    ("text", "host_id", "key"),
    [
        ('[hosts."sw 1"]\nport = 22x\n', "sw 1", "port"),  # a quoted id
        ("[hosts.r1.vars]\nvlan = 1 2\n", "r1", "vlan"),  # the host's vars table
        ('[hosts.r1]\naddress = "a"\n[defaults]\nuser = \n', None, "user"),  # not in a host table
        ('[hosts.r1]\naddress = "a"\n[hosts.r1]\n', "r1", None),  # a header, not an assignment
        ("[hosts.r1]\nvlan = [1,\n", None, None),  # tomllib names no line
    ],
)
def test_bad_toml_is_placed_where_the_text_tells(text: str, host_id: str | None, key: str | None) -> None:
    err = error_of(text)
    assert "invalid TOML" in str(err)
    assert (err.host_id, err.key) == (host_id, key)


def test_bad_toml_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_text("[hosts\n")
    with pytest.raises(LabError, match="invalid TOML") as info:
        load_lab_config(path)
    assert info.value.path == path


def test_missing_file_is_a_lab_error(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="cannot read") as info:
        load_lab_config(tmp_path / "nope.toml")
    assert str(tmp_path / "nope.toml") in str(info.value)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_bytes(b'[lab]\nname = "\xff"\n')
    with pytest.raises(LabError, match="UTF-8"):
        load_lab_config(path)


def test_unknown_host_key_has_a_hint() -> None:
    err = host_error('adress = "x"')
    assert (err.path, err.host_id, err.key) == (LAB, "h1", "adress")
    message = str(err)
    assert str(LAB) in message and "'h1'" in message and "'adress'" in message
    assert "did you mean 'address'?" in message


def test_unknown_key_without_close_match_has_no_hint() -> None:
    err = host_error('address = "x"\nzzzqqq = 1')
    assert err.key == "zzzqqq"
    assert "did you mean" not in str(err)


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("[host.a]\n", "host", "hosts"),
        ("[lab]\nnmae = 'x'\n", "nmae", "name"),
        ("[defaults]\ncommand_timout = 3\n", "command_timout", "command_timeout"),
        ("[hosts.a]\naddress = 'x'\npassword = { evn = 'X' }\n", "password", "env"),
        ("[hosts.a]\naddress = 'x'\nhost_key_check = 'acept-new'\n", "host_key_check", "accept-new"),
        ("[hosts.a]\ntransport = 'sshh'\naddress = 'x'\n", "transport", "ssh"),
        ("[hosts.a]\ntransport = 'telent'\naddress = 'x'\n", "transport", "telnet"),
    ],
)
def test_unknown_names_everywhere_have_hints(text: str, key: str, hint: str) -> None:
    err = error_of(text)
    assert err.key == key
    assert f"did you mean '{hint}'?" in str(err)


def test_unknown_transport_lists_the_transports() -> None:
    err = host_error('transport = "snmp"\naddress = "x"')
    assert err.key == "transport" and err.host_id == "h1"
    assert "unknown transport 'snmp'" in str(err)
    assert "ssh, telnet, serial, tcp, local" in str(err)


@pytest.mark.parametrize(
    ("table", "key", "expected"),
    [
        ('address = "x"\nport = "22"', "port", "integer"),
        ('address = "x"\nport = true', "port", "integer"),  # a bool is not an int
        ('address = "x"\nport = 22.0', "port", "integer"),
        ('address = "x"\nconnect_timeout = true', "connect_timeout", "seconds"),  # nor a float
        ('address = "x"\ncommand_timeout = "60"', "command_timeout", "seconds"),
        ('address = "x"\ntags = "router"', "tags", "array"),
        ('address = "x"\ntags = ["a", 1]', "tags", "tag"),
        ('address = "x"\nvars = 3', "vars", "table"),
        ('address = "x"\nagent = "yes"', "agent", "true or false"),
        ('address = "x"\nagent = 1', "agent", "true or false"),
        ("address = 10", "address", "string"),
        ('address = ""', "address", "non-empty"),
        ('address = "x"\nuser = 0', "user", "string"),
        ('address = "x"\nkey = 1', "key", "path"),
        ('address = "x"\nmax_output = 1.5', "max_output", "integer"),
        ('transport = 1\naddress = "x"', "transport", "string"),
        ('transport = "serial"\ndevice = "/d"\nbaud = "fast"', "baud", "integer"),
        ('transport = "telnet"\naddress = "x"\nwrite_delay = false', "write_delay", "seconds"),
    ],
)
def test_wrong_types(table: str, key: str, expected: str) -> None:
    err = host_error(table)
    assert (err.host_id, err.key) == ("h1", key)
    assert expected in str(err)
    assert str(LAB) in str(err)


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('address = "x"\nconnect_timeout = -1', "connect_timeout"),
        ('address = "x"\ncommand_timeout = 0', "command_timeout"),
        ('address = "x"\ncommand_timeout = nan', "command_timeout"),
        ('address = "x"\nconnect_timeout = -inf', "connect_timeout"),
        ('address = "x"\nkeepalive_interval = -0.5', "keepalive_interval"),
        ('address = "x"\nkeepalive_interval = inf', "keepalive_interval"),
        ('transport = "telnet"\naddress = "x"\nwrite_delay = -0.1', "write_delay"),
        ('address = "x"\nport = 0', "port"),
        ('address = "x"\nport = 65536', "port"),
        ('address = "x"\nmax_output = 0', "max_output"),
        ('transport = "serial"\ndevice = "/d"\nbaud = -9600', "baud"),
        ('transport = "telnet"\naddress = "x"\nlogin_prompt = "[unclosed"', "login_prompt"),
    ],
)
def test_bad_values(table: str, key: str) -> None:
    err = host_error(table)
    assert err.key == key


def test_bad_lab_and_defaults_tables() -> None:
    assert error_of("lab = 3\n").key == "lab"
    assert error_of("defaults = 3\n").key == "defaults"
    assert error_of("hosts = 3\n").key == "hosts"
    assert error_of("[lab]\nname = 3\n").key == "name"
    err = error_of("[defaults]\nport = 'x'\n")
    assert err.key == "port" and err.host_id is None and "[defaults]" in str(err)
    err = error_of("[hosts]\na = 3\n")
    assert err.host_id == "a" and "must be a table" in str(err)


@pytest.mark.parametrize("transport", ["ssh", "telnet"])
def test_missing_address(transport: str) -> None:
    err = host_error(f'transport = "{transport}"\nport = 2222')
    assert (err.host_id, err.key) == ("h1", "address")
    assert "missing" in str(err)


def test_missing_address_with_ssh_by_default() -> None:
    err = host_error('user = "root"')
    assert err.key == "address" and "ssh host needs an address" in str(err)


def test_address_from_defaults_is_enough() -> None:
    assert parse_lab('[defaults]\naddress = "x"\n[hosts.a]\n').hosts[0].address == "x"


def test_missing_device() -> None:
    err = host_error('transport = "serial"\nbaud = 9600')
    assert err.key == "device"


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('address = "x"\ndevice = "/dev/ttyS0"', "device"),
        ('address = "x"\nbaud = 9600', "baud"),
        ('address = "x"\nlogin_prompt = "login:"', "login_prompt"),
        ('transport = "telnet"\naddress = "x"\nhop = "j"', "hop"),
        ('transport = "telnet"\naddress = "x"\nkey = "k"', "key"),
        ('transport = "serial"\ndevice = "/d"\naddress = "x"', "address"),
        ('transport = "local"\naddress = "x"', "address"),
        ('transport = "local"\nuser = "root"', "user"),
    ],
)
def test_key_not_valid_for_transport(table: str, key: str) -> None:
    err = host_error(table)
    assert err.key == key
    assert "not valid for transport" in str(err)


@pytest.mark.parametrize("host_id", ["a b", "", "r/1", "x[1]", "é", "r1\\n", "r1\\t"])
def test_invalid_host_ids(host_id: str) -> None:
    err = error_of(f'[hosts."{host_id}"]\ntransport = "local"\n')
    assert err.host_id == host_id.replace("\\n", "\n").replace("\\t", "\t")
    assert "letters, digits" in str(err)


def test_valid_host_ids() -> None:
    text = "".join(f'[hosts."{i}"]\ntransport = "local"\n' for i in ["a", "r-1", "r_2", "r.3", "9"])
    assert parse_lab(text).ids == ["a", "r-1", "r_2", "r.3", "9"]


def test_hop_cycle_names_the_chain() -> None:
    err = error_of('[hosts.a]\naddress = "a"\nhop = "b"\n[hosts.b]\naddress = "b"\nhop = "a"\n')
    assert "a -> b -> a" in str(err)
    assert err.key == "hop"


def test_hop_to_itself() -> None:
    err = error_of('[hosts.a]\naddress = "a"\nhop = "a"\n')
    assert "a -> a" in str(err)


def test_longer_hop_cycle_behind_a_chain() -> None:
    text = "".join(
        f'[hosts.{h}]\naddress = "{h}"\nhop = "{nxt}"\n'
        for h, nxt in [("x", "a"), ("a", "b"), ("b", "c"), ("c", "a")]
    )
    err = error_of(text)
    assert "a -> b -> c -> a" in str(err)


def test_unknown_hop_names_the_chain_with_a_hint() -> None:
    text = '[hosts.a]\naddress = "a"\nhop = "b"\n[hosts.b]\naddress = "b"\nhop = "jumbox"\n'
    text += '[hosts.jumpbox]\naddress = "j"\n'
    err = error_of(text)
    assert "unknown host 'jumbox'" in str(err)
    assert "a -> b -> jumbox" in str(err)
    assert "did you mean 'jumpbox'?" in str(err)


def test_hop_must_be_an_ssh_host() -> None:
    err = error_of('[hosts.a]\naddress = "a"\nhop = "t"\n[hosts.t]\ntransport = "telnet"\naddress = "t"\n')
    assert err.key == "hop" and "must be an ssh host" in str(err)


def test_line_limit_merges_validates_and_round_trips() -> None:
    text = (
        '[defaults]\nline_limit = 1000\n[hosts.a]\ntransport = "local"\n'
        '[hosts.b]\naddress = "b"\nline_limit = 0\n[hosts.c]\ntransport = "serial"\ndevice = "/dev/ttyS0"\n'
    )
    lab = parse_lab(text)
    assert [h.line_limit for h in lab.hosts] == [1000, 0, 1000]
    assert roundtrip(lab).hosts == lab.hosts
    assert parse_lab('[hosts.a]\ntransport = "local"\n').hosts[0].line_limit is None  # the host decides
    wrong = [("10", "at least 64"), ("-1", "at least 64"), ("true", "an integer"), ('"512"', "an integer")]
    for bad, says in wrong:
        err = host_error(f'address = "x"\nline_limit = {bad}')
        assert err.key == "line_limit" and says in str(err)


def test_a_default_hop_leads_every_other_host_through_it() -> None:
    text = (
        '[defaults]\nhop = "j"\n[hosts.a]\naddress = "a"\n[hosts.j]\naddress = "j"\n'
        '[hosts.b]\naddress = "b"\nhop = "a"\n[hosts.s]\ntransport = "serial"\ndevice = "/dev/ttyS0"\n'
    )
    assert [getattr(h, "hop", None) for h in parse_lab(text).hosts] == ["j", None, "a", None]


def test_hop_chains_are_allowed() -> None:
    text = '[hosts.a]\naddress = "a"\nhop = "b"\n[hosts.b]\naddress = "b"\nhop = "c"\n'
    text += '[hosts.c]\naddress = "c"\n'
    assert [h.hop for h in parse_lab(text).hosts] == ["b", "c", None]


# -- secrets ------------------------------------------------------------------------------


def test_secret_from_env_is_read_at_reveal_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTTO_TEST_PW", raising=False)
    cfg = parse_lab('[hosts.r1]\naddress = "x"\npassword = { env = "OTTO_TEST_PW" }\n', LAB).hosts[0]
    assert cfg.password is not None
    monkeypatch.setenv("OTTO_TEST_PW", "hunter2-at-connect")  # set after loading
    assert cfg.password.reveal("r1", "password") == "hunter2-at-connect"


def test_missing_environment_variable_names_host_key_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTTO_TEST_PW", raising=False)
    cfg = parse_lab('[hosts.r1]\naddress = "x"\npassword = { env = "OTTO_TEST_PW" }\n', LAB).hosts[0]
    assert cfg.password is not None
    with pytest.raises(LabError) as info:
        cfg.password.reveal("r1", "password")
    err = info.value
    assert (err.host_id, err.key, err.path) == ("r1", "password", LAB)
    assert "OTTO_TEST_PW" in str(err) and "'r1'" in str(err)


def test_secret_never_shows_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    literal = Secret.literal("s3cr3t-literal")
    assert "s3cr3t" not in repr(literal) and "s3cr3t" not in str(literal)
    assert repr(literal) == "Secret('***')"
    monkeypatch.setenv("OTTO_TEST_PW", "s3cr3t-env")
    env = Secret.from_env("OTTO_TEST_PW")
    assert repr(env) == str(env) == "Secret(env='OTTO_TEST_PW')"
    assert literal.reveal("h", "password") == "s3cr3t-literal"
    assert env.reveal("h", "password") == "s3cr3t-env"
    assert f"{env} {literal!r}".count("s3cr3t") == 0


def test_secret_equality_and_toml() -> None:
    assert Secret.from_env("A") == Secret.from_env("A")
    assert Secret.from_env("A") != Secret.from_env("B")
    assert Secret.literal("x") == Secret.literal("x")
    assert Secret.literal("A") != Secret.from_env("A")
    assert len({Secret.from_env("A"), Secret.from_env("A")}) == 1
    assert Secret.from_env("A").to_toml() == {"env": "A"}
    assert Secret.literal("pw").to_toml() == "pw"
    assert Secret.from_env("A").env == "A" and Secret.literal("pw").env is None
    with pytest.raises(ValueError):
        Secret.from_env("")
    with pytest.raises(TypeError):
        Secret.literal(3)  # type: ignore[arg-type]


def test_plain_string_password_stays_hidden_in_configs_and_errors() -> None:
    lab = parse_lab('[hosts.r1]\naddress = "x"\npassword = "pl41n-pw"\n')
    cfg = lab.hosts[0]
    assert cfg.password == Secret.literal("pl41n-pw")
    assert "pl41n" not in repr(cfg) and "pl41n" not in repr(lab)
    # An error about another key of the same host does not show the password.
    err = error_of('[hosts.r1]\naddress = "x"\npassword = "pl41n-pw"\nport = "no"\n')
    assert "pl41n" not in str(err)


def test_plain_string_password_in_defaults_stays_hidden() -> None:
    lab = parse_lab('[defaults]\npassword = "d3f-pw"\n[hosts.r1]\naddress = "x"\n')
    assert lab.defaults == {"password": Secret.literal("d3f-pw")}
    assert lab.hosts[0].password == Secret.literal("d3f-pw")
    assert "d3f" not in repr(lab) and "d3f" not in repr(lab.hosts[0])
    assert lab.to_toml()["defaults"] == {"password": "d3f-pw"}  # written back as the file had it


def test_wrong_password_type_is_not_echoed() -> None:
    err = host_error('address = "x"\npassword = 123987')
    assert err.key == "password"
    assert "123987" not in str(err)
    err = error_of('[defaults]\npassword = ["hidden-pw"]\n')
    assert err.key == "password" and "hidden-pw" not in str(err)


def test_secret_table_needs_env() -> None:
    err = host_error('address = "x"\npassword = { env = "" }')
    assert err.key == "password" and "env" in str(err)


# -- round trips ----------------------------------------------------------------------------


def roundtrip(config: LabConfig, path: Path | None = LAB) -> LabConfig:
    return parse_lab(tomli_w.dumps(config.to_toml()), path)


def test_spec_example_round_trips_exactly() -> None:
    lab = parse_lab(SPEC_EXAMPLE, LAB)
    data = lab.to_toml()
    # What the user wrote stays as written: implied ports are not added, secrets are references.
    assert "port" not in data["hosts"]["jumpbox"]
    assert data["hosts"]["router1"]["port"] == 22
    assert data["hosts"]["router1"]["password"] == {"env": "ROUTER1_PASSWORD"}
    assert data["hosts"]["router1"]["key"] == "~/.ssh/lab_ed25519"
    assert data["defaults"] == {"user": "root", "connect_timeout": 10.0, "command_timeout": 60.0}
    assert "user" not in data["hosts"]["jumpbox"]  # defaults stay in [defaults]
    again = roundtrip(lab)
    assert again.hosts == lab.hosts and again.name == lab.name and again.defaults == lab.defaults
    assert again.to_toml() == data


def test_config_built_in_code_dumps_only_what_differs() -> None:
    config = LabConfig(
        name="code",
        hosts=[
            SshConfig(id="a", address="x", port=22),
            TelnetConfig(id="b", address="y", port=2323, password=Secret.from_env("P")),
            SerialConfig(id="c", device=Path("/dev/ttyS1"), baud=115200),
        ],
    )
    data = config.to_toml()
    assert data["hosts"]["a"] == {"address": "x"}
    expected_b = {"transport": "telnet", "address": "y", "port": 2323, "password": {"env": "P"}}
    assert data["hosts"]["b"] == expected_b
    assert data["hosts"]["c"] == {"transport": "serial", "device": "/dev/ttyS1"}
    assert roundtrip(config).hosts == config.hosts


def test_relative_path_written_to_another_folder_becomes_absolute(tmp_path: Path) -> None:
    lab = parse_lab('[hosts.a]\naddress = "x"\nkey = "keys/id"\n', tmp_path / "lab.toml")
    assert lab.to_toml(tmp_path.resolve())["hosts"]["a"]["key"] == "keys/id"
    elsewhere = tmp_path / "other"
    data = lab.to_toml(elsewhere)
    assert data["hosts"]["a"]["key"] == str(tmp_path.resolve() / "keys" / "id")
    assert parse_lab(tomli_w.dumps(data), elsewhere / "lab.toml").hosts == lab.hosts


ids = st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=12)
words = st.text(string.ascii_letters + string.digits + "-_./", min_size=1, max_size=20)
seconds = st.floats(min_value=0.001, max_value=1e6, allow_nan=False, allow_infinity=False)
toml_scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.text(max_size=10),
    st.floats(allow_nan=False, allow_infinity=False),
)
var_values = st.recursive(
    toml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
common: dict[str, st.SearchStrategy[Any]] = {
    "tags": st.lists(words, max_size=3),
    "vars": st.dictionaries(st.text(min_size=1, max_size=8), var_values, max_size=3),
    "connect_timeout": seconds,
    "command_timeout": seconds | st.just(math.inf),
    "max_output": st.integers(1, 2**40),
}
login: dict[str, st.SearchStrategy[Any]] = {
    "user": words,
    "password": words
    | st.builds(lambda n: {"env": n}, st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True)),
}
console: dict[str, st.SearchStrategy[Any]] = {
    "login_prompt": st.sampled_from(["login: ?$", "[Uu]sername:"]),
    "password_prompt": st.sampled_from(["assword: ?$", "PIN:"]),
    "write_delay": st.floats(0, 1),
}
per_transport: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "ssh": {
        "address": words,
        "port": st.integers(1, 65535),
        **login,
        "key": words,
        "host_key_check": st.sampled_from(["strict", "accept-new", "off"]),
        "known_hosts": words,
        "agent": st.booleans(),
        "ssh_config": st.booleans() | words,
        "keepalive_interval": st.floats(0, 1000),
    },
    "telnet": {"address": words, "port": st.integers(1, 65535), **login, **console},
    "serial": {"device": words, "baud": st.integers(1, 4_000_000), **login, **console},
    "local": {},
}
required = {"ssh": "address", "telnet": "address", "serial": "device", "local": None}


@st.composite
def host_tables(draw: st.DrawFn, transport: str) -> dict[str, Any]:
    options = {**common, **per_transport[transport]}
    chosen = draw(st.lists(st.sampled_from(sorted(options)), unique=True, max_size=len(options)))
    table: dict[str, Any] = {}
    if transport != "ssh" or draw(st.booleans()):
        table["transport"] = transport
    if required[transport]:
        table[required[transport]] = draw(options[required[transport]])
    for key in chosen:
        table[key] = draw(options[key])
    return table


@st.composite
def lab_data(draw: st.DrawFn) -> dict[str, Any]:
    host_ids = draw(st.lists(ids, unique=True, max_size=6))
    hosts: dict[str, Any] = {}
    ssh_ids: list[str] = []
    for host_id in host_ids:
        transport = draw(st.sampled_from(["ssh", "telnet", "serial", "local"]))
        table = draw(host_tables(transport))
        if transport == "ssh" and ssh_ids and draw(st.booleans()):
            table["hop"] = draw(st.sampled_from(ssh_ids))  # hops only backwards: never a cycle
        if transport == "ssh":
            ssh_ids.append(host_id)
        hosts[host_id] = table
    data: dict[str, Any] = {}
    if draw(st.booleans()):
        data["lab"] = {"name": draw(words)}
    defaults = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "user": words,
                "command_timeout": seconds,
                "tags": common["tags"],
                "port": st.integers(1, 9),
            },
        )
    )
    if defaults:
        data["defaults"] = defaults
    data["hosts"] = hosts
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lab_data())
def test_random_valid_labs_round_trip(data: dict[str, Any]) -> None:
    path = Path("/labs/random/lab.toml")
    text = tomli_w.dumps(data)
    config = parse_lab(text, path)
    assert config.ids == list(data["hosts"])
    dumped = tomli_w.dumps(config.to_toml())
    again = parse_lab(dumped, path)
    assert again.hosts == config.hosts
    assert again.name == config.name
    assert again.defaults == config.defaults
    assert tomli_w.dumps(again.to_toml()) == dumped  # a fixed point: dump(load(dump)) == dump
    for cfg, host_id in zip(again.hosts, data["hosts"], strict=True):
        assert cfg.explicit == frozenset(data["hosts"][host_id])


def test_example_file_loads_and_documents_every_key() -> None:
    example = ROOT / "lab.toml.example"
    config = load_lab_config(example)
    assert config.hosts, "the example has hosts"
    text = example.read_text()
    used = set(config.defaults)
    for cfg in config.hosts:
        used |= set(cfg.explicit or ())
    missing = [k for k in all_host_keys() if k not in used]
    assert not missing, f"lab.toml.example does not show: {missing}"
    for line in text.splitlines():
        stripped = line.strip()
        if "=" in stripped and not stripped.startswith("#") and not stripped.startswith("["):
            assert "#" in stripped or stripped.startswith(("mgmt_vlan", "rack", "console_port")), (
                f"undocumented line in lab.toml.example: {line!r}"
            )
