from pathlib import Path

import pytest

from modelmon.config import parse_settings


def test_environment_supplies_defaults_and_flags_override_it():
    env = {"MODELMON_PORT": "9000", "MODELMON_USER_ID": "user07", "MODELMON_VARIANT": "canary"}
    settings = parse_settings(["--port", "9100"], env)
    assert settings.port == 9100
    assert settings.user_id == "user07"
    assert settings.variant == "canary"
    assert settings.model_path == Path("/opt/modelmon/models/model-v1.joblib")
    assert settings.inject_error_ratio == 0.0


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--quality-window", "0"], {}, "--quality-window: must be at least 1"),
        ([], {"MODELMON_PORT": "http"}, "--port: must be a number"),
        (["--inject-error-ratio", "1.5"], {}, "must be between 0 and 1"),
        ([], {"MODELMON_VARIANT": "blue"}, "--variant: must be one of stable, canary"),
        (["--metrics-enabled", "maybe"], {}, "must be true or false"),
        (["--inject-prediction-bias", "nan"], {}, "must be a finite number"),
    ],
)
def test_bad_settings_are_refused_with_the_flag_named(capsys, argv, env, message):
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(argv, env)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
