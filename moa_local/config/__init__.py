"""models.toml, environment and flags, merged in one place into a :class:`Config`.

Precedence, lowest to highest: built-in defaults < the config file <
``MOA_LOCAL_*`` environment variables < flags (or keyword arguments of
:class:`moa_local.MoA`). Exactly one file is read, the first that exists of:
``--config``, ``$MOA_LOCAL_CONFIG``, ``./models.toml``,
``$MOA_LOCAL_HOME/models.toml``. Without any, the built-in defaults
apply, so an installed ``moa-local`` works from any directory.

Every value goes through one validator, and every error names where the bad
value came from: the file and line for TOML syntax, the file, table and key
for a wrong value, the variable for the environment, the flag for flags.

The package, module by module (each imports only those above it)::

    defaults   the built-in [defaults], [resources] and presets; the choices
    validate   one validator per setting; environment strings parsed
    tables     [models.NAME], [hosts.NAME] and [presets.NAME] tables read
    load       Config; the file found and read; everything merged
"""

from __future__ import annotations

from .defaults import (
    AGGREGATIONS,
    BACKENDS,
    BUILTIN_DEFAULTS,
    BUILTIN_PRESETS,
    BUILTIN_RESOURCES,
    HOST_KINDS,
    LAYOUTS,
    ROUTERS,
    STRATEGIES,
    TABLES,
    TASKS,
)
from .load import (
    Config,
    apply_overrides,
    find_config_file,
    load_config,
    moa_home,
    preset_overrides,
)
from .tables import HostConfig, ModelConfig

__all__ = [
    "AGGREGATIONS",
    "BACKENDS",
    "BUILTIN_DEFAULTS",
    "BUILTIN_PRESETS",
    "BUILTIN_RESOURCES",
    "HOST_KINDS",
    "LAYOUTS",
    "ROUTERS",
    "STRATEGIES",
    "TABLES",
    "TASKS",
    "Config",
    "HostConfig",
    "ModelConfig",
    "apply_overrides",
    "find_config_file",
    "load_config",
    "moa_home",
    "preset_overrides",
]
