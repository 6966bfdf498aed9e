"""pipeline.config.load_config: defaults, partial overrides, validation, immutability."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.config import CleanConfig, Config, ConfigError, load_config


def write(tmp_path, text: str, name: str = "pagewash.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults():
    config = load_config()
    assert config == Config()
    assert config.clean == CleanConfig()
    for f in dataclasses.fields(CleanConfig):
        assert getattr(config.clean, f.name) == f.default, f.name
    assert config.rules_dirs == ()
    assert config.max_input_bytes == 16 * 1024 * 1024
    assert config.language_seed == 0
    assert 0.0 < config.max_error_rate < 1.0
    assert 0 < config.clean.short_max_words < config.clean.good_min_words
    assert 0.0 < config.clean.good_min_stopword_density < 1.0


def test_every_field_has_help():
    for cls in (Config, CleanConfig):
        for f in dataclasses.fields(cls):
            if f.name != "clean":
                assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help text"


def test_file_overrides_one_clean_key(tmp_path):
    value = CleanConfig().good_min_words + 3
    config = load_config(write(tmp_path, f"[clean]\ngood_min_words = {value}\n"))
    assert config.clean.good_min_words == value
    assert config.clean != CleanConfig()
    assert dataclasses.replace(config.clean, good_min_words=CleanConfig().good_min_words) == CleanConfig()
    assert dataclasses.replace(config, clean=CleanConfig()) == Config()


def test_file_overrides_top_level_keys(tmp_path):
    config = load_config(write(tmp_path, 'rules_dirs = ["a", "b"]\nlanguage_seed = 3\n'))
    assert config.rules_dirs == ("a", "b")
    assert config.language_seed == 3
    assert config.clean == CleanConfig()


def test_int_is_accepted_for_float(tmp_path):
    config = load_config(write(tmp_path, "[clean]\nbad_penalty = 3\n"))
    assert config.clean.bad_penalty == 3.0
    assert isinstance(config.clean.bad_penalty, float)


def test_keyword_overrides_win_over_file(tmp_path):
    path = write(tmp_path, "language_seed = 3\nmax_error_rate = 0.5\n")
    config = load_config(path, language_seed=9, max_input_bytes=None)
    assert config.language_seed == 9
    assert config.max_error_rate == 0.5
    assert config.max_input_bytes == Config().max_input_bytes  # None means "not given"


@pytest.mark.parametrize(
    "text, key",
    [
        ("colour = 1\n", "colour"),
        ("[clean]\ngood_min_wordz = 3\n", "good_min_wordz"),
        ("[cleaning]\ngood_min_words = 3\n", "cleaning"),
    ],
)
def test_unknown_key_is_named(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"unknown key {key!r}" in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "text, key",
    [
        ('[clean]\ngood_min_words = "ten"\n', "good_min_words"),
        ("[clean]\ngood_min_words = 2.5\n", "good_min_words"),
        ("[clean]\ngood_min_words = true\n", "good_min_words"),
        ('max_error_rate = "high"\n', "max_error_rate"),
        ('rules_dirs = "rules"\n', "rules_dirs"),
        ("clean = 3\n", "clean"),
    ],
)
def test_wrong_type_is_config_error(tmp_path, text, key):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert key in str(info.value)


def test_wrong_type_in_keyword_override():
    with pytest.raises(ConfigError, match="language_seed"):
        load_config(language_seed="zero")


def test_toml_syntax_error(tmp_path):
    path = write(tmp_path, "[clean\ngood_min_words = 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "line 1" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_config_error_is_value_error():
    assert issubclass(ConfigError, ValueError)


def test_config_is_frozen():
    config = load_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.language_seed = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.clean.good_min_words = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del config.clean
    assert config == Config()


def test_config_is_hashable_and_comparable():
    assert hash(load_config()) == hash(load_config())
    assert load_config(language_seed=1) != load_config()


@pytest.mark.parametrize(
    "text, message",
    [
        ("shard_pages = 0\n", "shard_pages must be at least 1"),
        ("shard_pages = -5\n", "shard_pages must be at least 1"),
        ("max_input_bytes = 0\n", "max_input_bytes must be at least 1"),
        ("extract_timeout = 0\n", "extract_timeout must be at least"),
        ("extract_timeout = -1.0\n", "extract_timeout must be at least"),
        ("extract_timeout = nan\n", "extract_timeout must be a finite number"),
        ("max_error_rate = -0.1\n", "max_error_rate must be at least 0"),
        ("max_error_rate = 1.5\n", "max_error_rate must be at most 1"),
        ("memory_limit_mb = 1000\n", "memory_limit_mb must be 0 (no limit) or at least 2048"),
        ("memory_limit_mb = -1\n", "memory_limit_mb must be 0 (no limit) or at least 2048"),
        ("workers = -2\n", "workers must be at least 0"),
        ("[clean]\ngood_min_words = -3\n", "[clean] good_min_words must be at least 1"),
        ("[clean]\nbad_penalty = nan\n", "[clean] bad_penalty must be a finite number"),
        ("[clean]\ngood_min_stopword_density = 1.5\n", "[clean] good_min_stopword_density must be at most 1"),
        ("[clean]\nmin_article_words = -1\n", "[clean] min_article_words must be at least 0"),
        ("[dedup]\npartitions = 100000\n", "[dedup] partitions must be at most 4096"),
    ],
)
def test_values_that_cannot_work_are_refused_at_load(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_zero_memory_limit_means_none_and_is_accepted(tmp_path):
    assert load_config(write(tmp_path, "memory_limit_mb = 0\n")).memory_limit_mb == 0
    assert load_config(memory_limit_mb=2048).memory_limit_mb == 2048


def test_worker_count_is_capped_to_what_the_machine_holds(caplog):
    from pipeline.executor import default_workers
    from pipeline.run.probes import cap_workers

    assert cap_workers(1) == 1 and cap_workers(0) == 0
    capped = cap_workers(500)
    assert 1 <= capped <= 4 * default_workers()
    assert "500 workers capped to" in caplog.text


def test_the_run_table_chooses_the_engine_and_the_old_workers_key_still_works(tmp_path):
    config = load_config(write(tmp_path, '[run]\nengine = "ray"\nworkers = 3\naddress = "ray://head:10001"\n'))
    assert (config.run.engine, config.run.workers, config.run.address) == ("ray", 3, "ray://head:10001")
    assert load_config(write(tmp_path, "workers = 5\n")).run.workers == 5  # a file from before [run]
    with pytest.raises(ConfigError, match=r"\[run\] engine must be one of local, ray"):
        load_config(write(tmp_path, '[run]\nengine = "spark"\n'))


def _readme_rows() -> dict[str, tuple[str, str]]:
    """key -> (default, what it does) of the README's table of configuration keys."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = text.split("### Configuration keys", 1)[1].split("\n\n#", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = (cells[1], cells[3])
    return rows


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def test_the_readme_table_names_every_config_key_with_its_default_and_help():
    """The README's table is the user's reference: one row per key, in the config's own words."""
    expected = {}
    for f in dataclasses.fields(Config):
        value = getattr(Config(), f.name)
        if dataclasses.is_dataclass(value):
            for sub in dataclasses.fields(value):
                expected[f"[{f.name}] {sub.name}"] = (f"`{_toml(getattr(value, sub.name))}`", sub.metadata["help"])
        else:
            expected[f.name] = (f"`{_toml(value)}`", f.metadata["help"])
    assert _readme_rows() == expected
