"""Reading job files and settings, with and without PyYAML."""

import builtins

import pytest
from caretaker.foundation.config import read_yaml
from caretaker.foundation.errors import ConfigError


@pytest.fixture
def without_yaml(monkeypatch):
    real_import = builtins.__import__

    def refuse_yaml(name, *args, **kwargs):
        if name == "yaml":
            raise ImportError("no yaml here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse_yaml)


def test_role_written_json_reads_without_pyyaml(tmp_path, without_yaml):
    path = tmp_path / "job.yml"
    path.write_text('# caretaker.ops.jobs owner=site\n#\n# Ansible managed\n{\n  "kind": "noop",\n  "schedule": "5 * * * *"\n}\n')
    assert read_yaml(str(path)) == {"kind": "noop", "schedule": "5 * * * *"}


def test_hand_written_yaml_without_pyyaml_names_the_fix(tmp_path, without_yaml):
    path = tmp_path / "job.yml"
    path.write_text("kind: noop\n")
    with pytest.raises(ConfigError) as error:
        read_yaml(str(path))
    assert "needs the Python package PyYAML" in error.value.message
    assert "/opt/caretaker/bin/python3" in error.value.message
    assert str(path) in error.value.message


def test_yaml_errors_name_the_file(tmp_path):
    path = tmp_path / "job.yml"
    path.write_text("kind: [unclosed\n")
    with pytest.raises(ConfigError) as error:
        read_yaml(str(path))
    assert error.value.message.startswith(f"{path}: not valid YAML")
