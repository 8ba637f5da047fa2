"""models.toml, environment and flags, merged in one place into a :class:`Config`.

Precedence, lowest to highest: built-in defaults < the config file <
``MOA_LOCAL_*`` environment variables < flags (or keyword arguments of
:class:`moa_local.MoA`). Exactly one file is read, the first that exists of:
``--config``, ``$MOA_LOCAL_CONFIG``, ``./models.toml``,
``$MOA_LOCAL_HOME/models.toml``. Without any, the built-in defaults
apply, so an installed ``moa-local`` works from any directory.

Every setting is declared once, as a field of :class:`Config`
(:mod:`.settings`): its name, type, default, valid values and help. Every
value goes through that setting's one rule, and every error names where the
bad value came from: the file and line for TOML syntax, the file, table and
key for a wrong value, the variable for the environment, the keyword (which
the CLI turns into the flag) for flags.

The package, module by module (each imports only those above it)::

    defaults   the values choice settings take; the built-in presets
    validate   rules: a check, its words, how an environment string reads
    tables     [models.NAME] and [hosts.NAME] tables read
    settings   Config: every setting declared, and what is derived from them
    load       the file found and read; everything merged
"""

from __future__ import annotations

from .defaults import (
    AGGREGATIONS,
    BACKENDS,
    BUILTIN_PRESETS,
    HOST_KINDS,
    LAYOUTS,
    ROUTERS,
    STRATEGIES,
    TASKS,
)
from .load import (
    apply_overrides,
    find_config_file,
    load_config,
    moa_home,
    preset_overrides,
)
from .settings import (
    SETTINGS,
    TABLES,
    Config,
    Setting,
    override_defaults,
    starting_values,
    validate,
)
from .tables import HostConfig, ModelConfig

__all__ = [
    "AGGREGATIONS",
    "BACKENDS",
    "BUILTIN_PRESETS",
    "HOST_KINDS",
    "LAYOUTS",
    "ROUTERS",
    "SETTINGS",
    "STRATEGIES",
    "TABLES",
    "TASKS",
    "Config",
    "HostConfig",
    "ModelConfig",
    "Setting",
    "apply_overrides",
    "find_config_file",
    "load_config",
    "moa_home",
    "override_defaults",
    "preset_overrides",
    "starting_values",
    "validate",
]
