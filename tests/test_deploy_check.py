"""`manage.py check --deploy` with the production environment the README gives reports nothing."""

from __future__ import annotations

import re
import secrets
import shlex

from cryptography.fernet import Fernet

from tests.harness import ROOT, manage, project_env

KEPT = {"PATH", "HOME", "LANG", "TMPDIR", "VIRTUAL_ENV"}


def readme_production_env() -> dict[str, str]:
    """The variables the README's Production section exports, with its `...` placeholders filled in."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Production", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "the README's Production section has no sh block"
    env: dict[str, str] = {}
    for line in block.group(1).splitlines():
        if line.startswith("export "):
            for word in shlex.split(line)[1:]:
                name, _, value = word.partition("=")
                env[name] = value
    assert {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL"} <= set(env), env
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    env["GENERATOR_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    return env


def test_check_deploy_with_the_readme_production_environment_reports_nothing(tmp_path):
    # Only what a server has: no setting of the test run leaks in (e.g. DJANGO_ALLOW_ASYNC_UNSAFE);
    # the data, media and storage roots stay in tmp_path.
    env = {
        name: value
        for name, value in project_env(tmp_path).items()
        if name in KEPT or name.startswith(("GENERATOR_", "MEDIA_"))
    }
    env.update(readme_production_env())
    assert env["DEBUG"] == "0"
    # --fail-level WARNING makes any warning a failure; the check needs no database or Redis connection.
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING", timeout_s=120)
    assert "System check identified no issues (0 silenced)." in result.stdout + result.stderr
