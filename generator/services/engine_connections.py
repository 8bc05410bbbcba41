"""Engine connections: test a validated connection and save it with its key encrypted (docs/engines.md).

The body's rules are the contract's (contract/engines.py); here are those that need more: a
name already used in the team, the live test, the team's default, and which engine (and
price) a generate request runs on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.views.decorators.debug import sensitive_variables

from generator.contract.base import validation_failed
from generator.contract.engines import EngineCreate, EngineUpdate
from generator.contract.generate import GenerateRequest
from generator.crypto import decrypt_json, encrypt_json
from generator.errors import Forbidden, ValidationFailed
from generator.models import EngineConnection, Membership, Team
from generator.presenters import timestamp
from generator.selectors import engine_list
from generator.services.billing import PRICE_BY_DURATION
from generator.services.storage_connections import scrub
from generator.services.upstream_handover import handover_refusal
from generator.upstream.base import Capabilities, Connection, UpstreamError
from generator.upstream.registry import BUILTIN, BUILTIN_CAPABILITIES, get_provider, supported_engine_types
from generator.upstream.templates import ModelTemplate, inputs_problems

TAKEN = "an engine with this name already exists in the team"


@dataclass(frozen=True)
class EngineChoice:
    """What a generate request runs on: None is the built-in engine."""

    connection: EngineConnection | None

    @property
    def name(self) -> str:
        return self.connection.name if self.connection else BUILTIN

    @property
    def info(self) -> dict:
        """What data.engine says before the upstream id is known; {} for builtin."""
        if self.connection is None:
            return {}
        model = (self.connection.parameters or {}).get("model")
        return {"name": self.connection.name, "type": self.connection.type, **({"model": model} if model else {})}

    def price_for(self, duration: int) -> int:
        return self.connection.price_for(duration) if self.connection else PRICE_BY_DURATION[duration]


@sensitive_variables()
def connection_of(engine: EngineConnection, *, secrets: dict | None = None) -> Connection:
    """The provider's view of a saved (or about to be saved) connection."""
    if secrets is None:
        secrets = decrypt_json(engine.secrets_encrypted)
    parameters = engine.parameters or {}
    return Connection(
        type=engine.type,
        api_key=str(secrets.get("api_key", "")),
        model=str(parameters.get("model", "")),
        base_url=str(parameters.get("base_url", "")),
        inputs=parameters.get("inputs"),
    )


def capabilities(engine: EngineConnection | None) -> Capabilities:
    if engine is None:
        return BUILTIN_CAPABILITIES
    return get_provider(engine.type).capabilities(connection_of(engine, secrets={}))


def _check_parameters(engine: EngineConnection) -> None:
    """422 naming parameters.model / parameters.inputs when a templated provider's connection has no usable template.

    The rule for every provider that ships input templates (Provider.templates): a model is
    required, and either a template ships for it or the connection gives its own valid inputs.
    A provider with one fixed request (Claid, templates None) is not checked here.
    """
    templates = get_provider(engine.type).templates
    if templates is None:
        return
    parameters = engine.parameters or {}
    model = parameters.get("model")
    if not model:
        raise validation_failed({"parameters.model": [f"is required for a {engine.type} connection"]})
    problems = inputs_problems(model=model, inputs=parameters.get("inputs"), shipped=templates)
    if problems:
        raise validation_failed({"parameters.inputs": problems})


@sensitive_variables()
def _test(engine: EngineConnection, secrets: dict) -> None:
    """Make the provider's cheap authenticated call; 422 with the upstream's reason if it fails."""
    try:
        get_provider(engine.type).test(connection_of(engine, secrets=secrets))
    except UpstreamError as exc:
        reason = scrub(exc.message, secrets)
        raise ValidationFailed(f"the connection test failed: {reason}", details={"credentials": [reason]}) from None


def _taken() -> ValidationFailed:
    return validation_failed({"name": [TAKEN]})


def _save(engine: EngineConnection) -> EngineConnection:
    try:
        with transaction.atomic():
            engine.save()
    except IntegrityError:
        raise _taken() from None
    return engine


@sensitive_variables()
def engine_connect(*, team: Team, user, request: EngineCreate) -> EngineConnection:
    """Test a validated connection and save it with its key encrypted."""
    if EngineConnection.objects.filter(team=team, name=request.name).exists():
        raise _taken()
    secrets = request.credentials.model_dump()
    parameters = request.parameters.model_dump(exclude_none=True) if request.parameters else {}
    engine = EngineConnection(team=team, name=request.name, type=request.type, parameters=parameters, created_by=user)
    _check_parameters(engine)
    _test(engine, secrets)
    engine.secrets_encrypted = encrypt_json(secrets)
    return _save(engine)


@sensitive_variables()
def engine_create(*, team: Team, user, name: str, type: str, api_key: str, parameters: dict) -> EngineConnection:
    """Validate a connection (the contract's rules), test it and save it: the dashboard's way in."""
    request = EngineCreate.parse(
        {"name": name, "type": type, "credentials": {"api_key": api_key}, "parameters": parameters}
    )
    return engine_connect(team=team, user=user, request=request)


@sensitive_variables()
def engine_update(*, team: Team, engine: EngineConnection, request: EngineUpdate) -> EngineConnection:
    """Rename, re-key or re-parameterise a connection; a new key or parameters are tested first."""
    if engine.team_id != team.pk:
        raise ValidationFailed("unknown engine")
    sent = request.model_fields_set
    if "name" in sent and request.name is not None:
        if EngineConnection.objects.filter(team=team, name=request.name).exclude(pk=engine.pk).exists():
            raise _taken()
        engine.name = request.name
    changes_connection = bool({"credentials", "parameters"} & sent)
    secrets = decrypt_json(engine.secrets_encrypted)
    if "credentials" in sent and request.credentials is not None:
        secrets = request.credentials.model_dump()
    if "parameters" in sent and request.parameters is not None:
        engine.parameters = request.parameters.model_dump(exclude_none=True)
    if changes_connection:
        _check_parameters(engine)
        _test(engine, secrets)
        engine.secrets_encrypted = encrypt_json(secrets)
    engine = _save(engine)
    if "is_default" in sent and request.is_default is not None:
        if request.is_default:
            _default_set(team, engine)
        elif team.default_engine_id == engine.pk:
            _default_set(team, None)  # no longer the default: the team falls back to builtin
    return engine


@sensitive_variables()
def engine_test(*, engine: EngineConnection) -> str:
    """Test a saved connection; return "" when it works, else the upstream's reason (secrets scrubbed)."""
    try:
        secrets = decrypt_json(engine.secrets_encrypted)
        _test(engine, secrets)
    except (ValueError, ValidationFailed) as exc:
        return str(getattr(exc, "message", exc))
    return ""


def engine_delete(*, team: Team, engine: EngineConnection) -> None:
    """Disconnect an engine; the team's default falls back to builtin, its jobs keep data.engine."""
    EngineConnection.objects.filter(team=team, pk=engine.pk).delete()


def engine_set_default(*, team: Team, user, name: str) -> None:
    """Make `builtin` or one of the team's connections the team's default (owners and admins)."""
    membership = Membership.objects.filter(team=team, user=user).first()
    if membership is None or not membership.can_manage:
        raise Forbidden("only owners and admins can set the team's default engine")
    engine = None if name == BUILTIN else EngineConnection.objects.filter(team=team, name=name).first()
    if name != BUILTIN and engine is None:
        raise validation_failed({"engine": [f"no engine named {name!r} in this team"]})
    _default_set(team, engine)


def _default_set(team: Team, engine: EngineConnection | None) -> None:
    Team.objects.filter(pk=team.pk).update(default_engine=engine)
    team.default_engine = engine


def _engine_named(team: Team, name: str | None) -> EngineConnection | None:
    """The connection options.engine names (None: builtin); absent, the team's default; 422 for an unknown name."""
    if name is None:
        return EngineConnection.objects.filter(pk=team.default_engine_id).first() if team.default_engine_id else None
    if name == BUILTIN:
        return None
    engine = EngineConnection.objects.filter(team=team, name=name).first()
    if engine is None:
        raise validation_failed({"options.engine": [f"no engine named {name!r} in this team"]})
    return engine


def engine_price(*, team: Team, name: str | None, duration: int) -> int:
    """The credits a video of `duration` holds on the engine options.engine names (absent: the team's default)."""
    return EngineChoice(connection=_engine_named(team, name)).price_for(duration)


def engine_choose(*, team: Team, request: GenerateRequest) -> EngineChoice:
    """The engine a generate request runs on: options.engine, else the team's default; 422 naming options.engine."""
    engine = _engine_named(team, request.options.engine)
    if engine is None:
        return EngineChoice(connection=None)
    caps = capabilities(engine)
    problems: dict[str, list[str]] = {}
    if request.duration not in caps.durations:
        allowed = ", ".join(str(d) for d in caps.durations)
        problems["options.duration"] = [f"the engine {engine.name!r} offers {allowed} s"]
    shape = request.output_format.aspect_ratio
    if caps.aspect_ratios is not None and shape not in caps.aspect_ratios:
        problems["options.aspect_ratio"] = [
            f"the engine {engine.name!r} cannot make {shape}; it offers {', '.join(caps.aspect_ratios)}"
        ]
    refusal = handover_refusal(team_id=team.pk, source=request.input, caps=caps, engine_name=engine.name)
    if refusal:
        problems["input"] = [refusal]
    if problems:
        raise validation_failed(problems)
    return EngineChoice(connection=engine)


@dataclass(frozen=True)
class EngineType:
    """A connection type this build runs, with the models its provider ships (None: it takes no model)."""

    type: str
    label: str
    templates: Mapping[str, ModelTemplate] | None


def engine_types() -> list[EngineType]:
    """The connection types of the registry, read now: a provider added there appears on the Engines page."""
    labels = dict(EngineConnection.Type.choices)
    return [
        EngineType(type=kind, label=str(labels.get(kind, kind)), templates=get_provider(kind).templates)
        for kind in supported_engine_types()
    ]


def engines_to_api(*, team: Team) -> list[dict]:
    """Every engine the team can run on, as the API lists them: builtin first, then its connections by name."""
    return [engine_to_api(None, team=team), *(engine_to_api(e, team=team) for e in engine_list(team=team))]


def engine_to_api(engine: EngineConnection | None, *, team: Team) -> dict:
    """The API's data object for a connection or for builtin (None); never the credentials."""
    caps = capabilities(engine)
    if engine is None:
        return {
            "id": None,
            "name": BUILTIN,
            "type": BUILTIN,
            "parameters": {},
            "price": {str(d): p for d, p in PRICE_BY_DURATION.items()},
            "durations": list(caps.durations),
            "aspect_ratios": None,
            "is_default": team.default_engine_id is None,
            "created_at": None,
        }
    return {
        "id": engine.pk,
        "name": engine.name,
        "type": engine.type,
        "parameters": dict(engine.parameters),
        "price": {"5": engine.price_5s, "10": engine.price_10s},
        "durations": list(caps.durations),
        "aspect_ratios": list(caps.aspect_ratios) if caps.aspect_ratios is not None else None,
        "is_default": team.default_engine_id == engine.pk,
        "created_at": timestamp(engine.created_at),
    }
