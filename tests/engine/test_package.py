"""The engine package's names: one definition each, and the YAML reader loaded only when used."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROBE = """
import sys
import masqctl.engine.model
before = sorted(m for m in sys.modules if m == "yaml" or m.startswith(("yaml.", "masqctl.engine.")))
from masqctl.engine import load_config_dir, parse_to_ports, render
after = sorted(m for m in sys.modules if m == "yaml" or m.startswith(("yaml.", "masqctl.engine.")))
print(repr((before, after, callable(render), load_config_dir.__module__, parse_to_ports.__module__)))
"""


def test_importing_the_model_does_not_load_yaml_and_every_public_name_resolves():
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 0, r.stderr
    before, after, render_is_callable, home_load, home_ports = ast.literal_eval(r.stdout.strip())
    assert "yaml" not in before and "masqctl.engine.configdir" not in before
    assert "yaml" in after and "masqctl.engine.configdir" in after
    assert render_is_callable  # the function, not the submodule of the same name
    assert (home_load, home_ports) == ("masqctl.engine.configdir", "masqctl.engine.flagvalues")

    import masqctl.engine as engine
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name
        assert not isinstance(getattr(engine, name), type(engine)), name


def test_the_flavours_and_defaults_have_one_definition():
    import masqctl.configfolder as folder
    import masqctl.engine as engine
    import masqctl.engine.model as model

    for name in ("AZURE_V2", "UPSTREAM", "TKE", "FLAVORS", "DEFAULT_CHAIN", "DEFAULT_CONFIG_DIR"):
        assert getattr(engine, name) is getattr(model, name) is getattr(folder, name), name
