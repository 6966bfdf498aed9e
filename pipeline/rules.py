"""Boilerplate rules as data: TOML files grouped by concept, compiled once per run.

A rule file holds `[[rule]]` tables (line rules), `[[meta]]` tables (metadata patterns) and a `[vocabulary]`
table (word lists: `pipeline.vocabulary`). The packaged defaults live in the repository's `rules/`; a user
folder read afterwards overrides a rule key by key when it reuses the rule's id (`enabled = false` switches
a default off), adds rules with new ids, and adds words to the vocabulary's lists.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from .config import ConfigError
from .heuristics import HEURISTIC_SCREENS, HEURISTIC_TESTS, HEURISTICS
from .linestats import LineStats
from .rulefiles import _key_line, _read_tables
from .rulescreen import screens
from .vocabulary import VOCABULARY_KEYS, Vocabulary

try:
    from importlib.resources.abc import Traversable
except ImportError:  # pragma: no cover - Python 3.10
    from importlib.abc import Traversable

ACTIONS = ("drop", "cut_after", "cut_before", "keep")
RULE_KEYS = frozenset({"id", "description", "action", "exact", "prefix", "regex", "heuristic", "sites", "enabled"})
META_FIELDS = ("author", "sitename", "date")
META_KEYS = frozenset({"id", "description", "field", "regex", "enabled"})
_BULLETS = "•·▪◦‣∙●○■□►▶➤→*-–—>»|"


def default_rules_dir() -> Traversable:
    """The packaged defaults (the repository's `rules/`, installed as `pipeline.default_rules`), read through
    importlib.resources: installed from a wheel, that data-only folder is a namespace package, whose files are
    a Traversable (a MultiplexedPath), not a folder path."""
    try:
        return resources.files("pipeline.default_rules")
    except ModuleNotFoundError:  # pragma: no cover - running from a bare checkout
        return Path(__file__).resolve().parent.parent / "rules"


def trim_line(line: str) -> str:
    """A line as pagewash outputs it: surrounding white space trimmed."""
    return line.strip()


def line_key(line: str) -> str:
    """The form exact phrases are matched in: no bullets or edge punctuation, case and spaces folded."""
    key = " ".join(line.split()).lstrip(_BULLETS).strip().strip(":|·•»«>-–— ").casefold()
    return key if key.isascii() else unicodedata.normalize("NFKC", key)  # NFKC leaves ASCII as it is


def site_keys(hostname: str | None, sitename: str | None) -> frozenset[str]:
    """What a page's `sites` rules are matched against: its hostname and every parent domain of it but the
    last label (`news.example.co.uk` gives `example.co.uk` and `co.uk` too, so `sites = ["example.co.uk"]`
    covers every subdomain), and its site name as `line_key` folds it (`Example.com`, `The Harbour Times`)."""
    keys = set()
    if hostname:
        labels = [label for label in hostname.casefold().strip(".").split(".") if label]
        keys.update(".".join(labels[k:]) for k in range(max(len(labels) - 1, 1)))
    if sitename and (key := line_key(sitename)):
        keys.add(key)
    return frozenset(keys)


@dataclass(frozen=True, slots=True)
class LineRule:
    id: str
    action: str
    exact: frozenset[str] = frozenset()
    prefix: tuple[str, ...] = ()
    regex: tuple[re.Pattern[str], ...] = ()
    heuristic: str | None = None
    sites: frozenset[str] = frozenset()
    description: str = ""


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """A rule as `pagewash rules list` shows it, switched off or not."""

    id: str
    file: str
    action: str
    enabled: bool
    description: str


@dataclass(frozen=True, slots=True)
class MetaPattern:
    id: str
    field: str
    regex: re.Pattern[str]


@dataclass(frozen=True)
class RuleSet:
    """Compiled rules; immutable, shared by every document of a run."""

    rules: tuple[LineRule, ...]
    meta: tuple[MetaPattern, ...]
    files: tuple[str, ...] = ()
    vocab: Vocabulary = field(default_factory=lambda: packaged_vocabulary())
    listing: tuple[RuleInfo, ...] = field(default=(), compare=False)  # every rule, switched off too (`rules list`)
    _exact: dict = field(default_factory=dict, compare=False, repr=False)

    _by_action: dict = field(default_factory=dict, compare=False, repr=False)
    _any_regex: dict = field(default_factory=dict, compare=False, repr=False)
    _screen: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for rule in self.rules:
            self._by_action.setdefault(rule.action, []).append(rule)
            if rule.sites:
                continue
            for phrase in rule.exact:
                self._exact.setdefault((rule.action, phrase), rule.id)
        for action, rules in self._by_action.items():
            self._any_regex[action] = tuple(s.regex for s in screens([p for rule in rules for p in rule.regex]))
        # `candidates` screens: every exact phrase and prefix, one alternation of every pattern, the heuristics
        self._screen["exact"] = frozenset(p for rule in self.rules if not rule.sites for p in rule.exact)
        self._screen["prefix"] = tuple(p for rule in self.rules if not rule.sites for p in rule.prefix)
        self._screen["regex"] = screens([p for rule in self.rules for p in rule.regex])
        self._screen["heuristics"] = tuple(dict.fromkeys(r.heuristic for r in self.rules if r.heuristic is not None))
        self._screen["sites"] = any(rule.sites for rule in self.rules)

    def candidates(self, stats: LineStats, keys: list[str], site_keys: frozenset[str] = frozenset()) -> list[bool]:
        """For every line of a page, whether any rule of any action could match it (False for most lines, the
        article's, which then skip `match`): `stats` of its trimmed worded lines, `keys` their `line_key`. Each
        screen runs only on the lines no earlier screen let through; the heuristics' tests only on the lines their
        numpy screens let through."""
        screen = self._screen
        n = len(keys)
        if site_keys and screen["sites"]:
            return [True] * n
        hit = np.fromiter(map(screen["exact"].__contains__, keys), dtype=bool, count=n)
        if screen["prefix"]:
            hit |= np.fromiter((key.startswith(screen["prefix"]) for key in keys), dtype=bool, count=n)
        lines = stats.lines
        for regex_screen in screen["regex"]:
            todo = regex_screen.worth_trying(stats, ~hit)
            search = regex_screen.regex.search
            hit[todo] = [search(lines[j]) is not None for j in todo]
        for name in screen["heuristics"]:
            todo = np.flatnonzero(~hit & HEURISTIC_SCREENS[name](stats)).tolist()
            test = HEURISTIC_TESTS[name]
            hit[todo] = [test(lines[j]) for j in todo]
        return hit.tolist()

    def match(self, line: str, key: str, action: str, site_keys: frozenset[str] = frozenset()) -> str | None:
        """The id of the first rule of `action` that matches the line, or None."""
        hit = self._exact.get((action, key))
        if hit is not None:
            return hit
        # one search over all of the action's patterns tells whether any of them can match: most lines
        # (the article's) match none, and then no pattern is tried alone
        regex_possible = any(screen.search(line) is not None for screen in self._any_regex.get(action, ()))
        for rule in self._by_action.get(action, ()):
            if rule.sites and not (rule.sites & site_keys):
                continue
            if rule.sites and key in rule.exact:
                return rule.id
            if rule.prefix and key.startswith(rule.prefix):
                return rule.id
            if regex_possible:
                for pattern in rule.regex:
                    if pattern.search(line):
                        return rule.id
            if rule.heuristic is not None and HEURISTIC_TESTS[rule.heuristic](line):
                return rule.id
        return None

    def meta_patterns(self, field_name: str) -> tuple[MetaPattern, ...]:
        return tuple(p for p in self.meta if p.field == field_name)


# --- loading -----------------------------------------------------------------------------------------


def _compile(
    where: str, text: str, line: int, key: str, patterns: Iterable[str], flags: int = re.IGNORECASE
) -> tuple[re.Pattern, ...]:
    compiled = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise ConfigError(f"{where}:{_key_line(text, line, key)}: {key} entries must be strings")
        try:
            compiled.append(re.compile(pattern, flags))
        except re.error as exc:
            raise ConfigError(f"{where}:{_key_line(text, line, key)}: bad regex {pattern!r}: {exc}") from exc
    return tuple(compiled)


def _string_list(where: str, text: str, line: int, raw: dict, key: str) -> list[str]:
    value = raw.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}:{_key_line(text, line, key)}: {key} must be a list of strings")
    return value


def _build_rule(raw: dict, where: str, text: str, line: int) -> LineRule | None:
    unknown = set(raw) - RULE_KEYS
    if unknown:
        bad = sorted(unknown)[0]
        raise ConfigError(f"{where}:{_key_line(text, line, bad)}: unknown key {bad!r} in [[rule]]")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        raise ConfigError(f"{where}:{line}: [[rule]] needs a string id")
    if raw.get("enabled", True) is False:
        return None
    action = raw.get("action", "drop")
    if action not in ACTIONS:
        raise ConfigError(f"{where}:{_key_line(text, line, 'action')}: action must be one of {ACTIONS}")
    heuristic = raw.get("heuristic")
    if heuristic is not None and heuristic not in HEURISTIC_TESTS:
        raise ConfigError(
            f"{where}:{_key_line(text, line, 'heuristic')}: unknown heuristic {heuristic!r} "
            f"(known: {', '.join(HEURISTICS)})"
        )
    exact = _string_list(where, text, line, raw, "exact")
    prefix = _string_list(where, text, line, raw, "prefix")
    regex = _compile(where, text, line, "regex", _string_list(where, text, line, raw, "regex"))
    if not (exact or prefix or regex or heuristic):
        raise ConfigError(f"{where}:{line}: rule {rule_id!r} has none of exact, prefix, regex, heuristic")
    return LineRule(
        id=rule_id,
        action=action,
        exact=frozenset(line_key(p) for p in exact),
        prefix=tuple(line_key(p) for p in prefix),
        regex=regex,
        heuristic=heuristic,
        sites=frozenset(line_key(s) for s in _string_list(where, text, line, raw, "sites")),
        description=str(raw.get("description", "")),
    )


def _build_meta(raw: dict, where: str, text: str, line: int) -> MetaPattern | None:
    unknown = set(raw) - META_KEYS
    if unknown:
        bad = sorted(unknown)[0]
        raise ConfigError(f"{where}:{_key_line(text, line, bad)}: unknown key {bad!r} in [[meta]]")
    if raw.get("enabled", True) is False:
        return None
    meta_id = raw.get("id")
    if not isinstance(meta_id, str) or not meta_id:
        raise ConfigError(f"{where}:{line}: [[meta]] needs a string id")
    if raw.get("field") not in META_FIELDS:
        raise ConfigError(f"{where}:{_key_line(text, line, 'field')}: field must be one of {META_FIELDS}")
    regex = raw.get("regex")
    (pattern,) = _compile(where, text, line, "regex", [regex], flags=0) if isinstance(regex, str) else (None,)
    if pattern is None or "value" not in pattern.groupindex:
        raise ConfigError(f"{where}:{_key_line(text, line, 'regex')}: regex needs a (?P<value>...) group")
    return MetaPattern(id=meta_id, field=raw["field"], regex=pattern)


def rule_files(directory: Traversable) -> list[Traversable]:
    """The `.toml` files of a rule folder (a path, or the packaged resources), by name."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: not a folder of rule files")
    return sorted((p for p in directory.iterdir() if p.name.endswith(".toml") and p.is_file()),
                  key=lambda p: p.name)


def load_rules(user_dirs: Iterable[str | Path] = (), include_defaults: bool = True) -> RuleSet:
    """Read and validate every rule file; raise ConfigError naming file, line and reason."""
    dirs: list[Traversable] = ([default_rules_dir()] if include_defaults else []) + [Path(d) for d in user_dirs]
    raw_rules: dict[str, tuple[dict, str, str, int]] = {}
    raw_metas: dict[str, tuple[dict, str, str, int]] = {}
    files = []
    # the packaged vocabulary always (the header needs every list), even without the packaged rules
    words: dict[str, list[str]] = {key: list(getattr(packaged_vocabulary(), key)) for key in VOCABULARY_KEYS}
    for directory in dirs:
        for path in rule_files(directory):
            files.append(str(path))
            rules, metas, vocabulary, text = _read_tables(path)
            for key, listed in vocabulary.items():  # added to, never replaced
                words[key] += [w for w in listed if w not in words[key]]
            for target, tables in ((raw_rules, rules), (raw_metas, metas)):
                for table, line in tables:
                    table_id = table.get("id")
                    if isinstance(table_id, str) and table_id in target:
                        merged = {**target[table_id][0], **table}
                        target[table_id] = (merged, str(path), text, line)
                    else:
                        target[str(table_id)] = (table, str(path), text, line)
    rules = [_build_rule(t, w, x, n) for t, w, x, n in raw_rules.values()]
    metas = [_build_meta(t, w, x, n) for t, w, x, n in raw_metas.values()]
    vocab = Vocabulary(**{key: tuple(listed) for key, listed in words.items()})
    listing = tuple(RuleInfo(str(t.get("id")), Path(w).name, str(t.get("action", "drop")),
                             t.get("enabled", True) is not False, str(t.get("description", "")))
                    for t, w, _x, _n in raw_rules.values())
    return RuleSet(
        rules=tuple(r for r in rules if r is not None),
        meta=tuple(m for m in metas if m is not None),
        files=tuple(files),
        vocab=vocab,
        listing=listing,
    )


@functools.cache
def packaged_vocabulary() -> Vocabulary:
    """The packaged `rules/vocabulary.toml` alone (read once: it is immutable): a RuleSet built without one."""
    _rules, _metas, vocabulary, _text = _read_tables(default_rules_dir() / "vocabulary.toml")
    return Vocabulary(**{key: tuple(words) for key, words in vocabulary.items()})
