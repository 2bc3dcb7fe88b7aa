"""The ctypes table (utilbot_gateway/_ffi.py) against the public header: every function with
its return and argument types, every enum value, the struct layouts. A mismatch fails here,
not as memory corruption in a user's program."""

from __future__ import annotations

import ctypes
import re
from pathlib import Path

import pytest

from utilbot_gateway import _ffi

HEADER = Path(__file__).resolve().parents[3] / "include" / "utilbot_gateway.h"
TEXT = HEADER.read_text()

C_TYPES = {
    "ubg_result_t": ctypes.c_int,
    "ubg_state_t": ctypes.c_int,
    "ubg_log_level_t": ctypes.c_int,
    "const char *": ctypes.c_char_p,
    "ubg_client_t": ctypes.c_void_p,
    "ubg_loop_t": ctypes.c_void_p,
    "void *": ctypes.c_void_p,
    "int32_t": ctypes.c_int32,
    "uint32_t": ctypes.c_uint32,
    "size_t": ctypes.c_size_t,
    "ubg_client_t *": ctypes.POINTER(ctypes.c_void_p),
    "ubg_loop_t *": ctypes.POINTER(ctypes.c_void_p),
    "int32_t *": ctypes.POINTER(ctypes.c_int32),
    "size_t *": ctypes.POINTER(ctypes.c_size_t),
    "ubg_state_t *": ctypes.POINTER(ctypes.c_int),
    "ubg_stats_t *": ctypes.POINTER(_ffi.CStats),
    "ubg_event_t *": ctypes.POINTER(_ffi.CEvent),
    "ubg_event_cb": _ffi.EVENT_CALLBACK,
}


def declared_functions() -> dict[str, tuple[str, list[str]]]:
    functions = {}
    # A long prototype has one parameter a line.
    for match in re.finditer(r"^UBG_API (.+?)\s*\b(ubg_\w+)\(([^;]*)\);$", TEXT, re.M):
        restype, name, params = match.group(1).strip(), match.group(2), match.group(3)
        args = [] if params == "void" else [re.sub(r"\s*\b\w+$", "", p.strip()).strip() for p in params.split(",")]
        functions[name] = (restype, args)
    return functions


def test_every_function_is_declared_with_the_same_types():
    declared = declared_functions()
    assert len(declared) >= 28
    assert list(declared) == list(_ffi.FUNCTIONS), "the ctypes table must list the header's functions, in order"
    for name, (restype, args) in declared.items():
        ours_restype, ours_args = _ffi.FUNCTIONS[name]
        assert C_TYPES[restype] == ours_restype, f"{name} returns {restype}"
        assert [C_TYPES[a] for a in args] == ours_args, f"{name} takes {args}"


def enum_values(prefix: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(rf"\b{prefix}(\w+) = (\d+)", TEXT)}


def test_enums_match():
    results = {m.group(1): int(m.group(2)) for m in re.finditer(r"\bUBG_(OK|E[A-Z0-9]+) = (\d+)", TEXT)}
    assert results == {member.name: member.value for member in _ffi.Result}
    assert enum_values("UBG_STATE_") == {member.name: member.value for member in _ffi.State}
    assert enum_values("UBG_EVENT_") == {member.name: member.value for member in _ffi.EventType}
    assert enum_values("UBG_LOG_") == {member.name: member.value for member in _ffi.LogLevel}


def struct_fields(name: str) -> list[tuple[str, str]]:
    body = re.search(rf"typedef struct {name} \{{(.*?)\}} {name}_t;", TEXT, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    fields = []
    for declaration in body.split(";"):
        declaration = " ".join(declaration.split())
        if declaration:
            match = re.match(r"(.+?)\s*\b(\w+)$", declaration)
            fields.append((match.group(2), match.group(1).strip()))
    return fields


FIELD_TYPES = {
    "size_t": ctypes.c_size_t,
    "ubg_event_type_t": ctypes.c_int,
    "ubg_state_t": ctypes.c_int,
    "ubg_result_t": ctypes.c_int,
    "const char *": (ctypes.c_char_p, ctypes.c_void_p),
    "int32_t": ctypes.c_int32,
    "int64_t": ctypes.c_int64,
    "uint64_t": ctypes.c_uint64,
}


def test_struct_layouts_match():
    for c_name, struct in (("ubg_event", _ffi.CEvent), ("ubg_stats", _ffi.CStats)):
        fields = struct_fields(c_name)
        assert [name for name, _ in fields] == [name for name, _ in struct._fields_], c_name
        for (name, c_type), (_, py_type) in zip(fields, struct._fields_):
            expected = FIELD_TYPES[c_type]
            assert py_type in expected if isinstance(expected, tuple) else py_type == expected, f"{c_name}.{name}"


def test_the_library_reports_the_struct_size_ctypes_computes():
    client = _ffi.lib()
    handle = ctypes.c_void_p()
    assert client.ubg_client_create(None, b"key", ctypes.byref(handle)) == 0
    stats = _ffi.CStats()
    stats.size = ctypes.sizeof(_ffi.CStats)
    assert client.ubg_client_get_stats(handle, ctypes.byref(stats)) == 0
    assert stats.size == ctypes.sizeof(_ffi.CStats)
    assert client.ubg_client_free(handle) == 0


def test_the_batch_reader_is_derived_from_the_ctypes_struct_and_checked():
    from utilbot_gateway.events import EventBatch, _struct_of

    assert EventBatch._STRUCT.size == ctypes.sizeof(_ffi.CEvent)

    class Packed(ctypes.Structure):  # a layout the native struct module would read wrongly
        _pack_ = 1
        _fields_ = [("a", ctypes.c_int32), ("b", ctypes.c_size_t)]

    with pytest.raises(ImportError, match="Packed.b"):
        _struct_of(Packed)


def test_the_package_and_the_library_it_loads_have_one_version():
    import utilbot_gateway

    assert utilbot_gateway.version() == utilbot_gateway.__version__
    # The header's macros are the one place the version is written.
    numbers = [re.search(rf"#define UBG_VERSION_{part} (\d+)", TEXT).group(1) for part in ("MAJOR", "MINOR", "PATCH")]
    string = re.search(r'#define UBG_VERSION_STRING "([^"]+)"', TEXT).group(1)
    assert string == ".".join(numbers) == utilbot_gateway.__version__
