"""Dashboard forms: they collect input; the rules live in parse_generate_request and the services."""

from __future__ import annotations

import json

from django import forms

from generator.contract.generate import BACKGROUNDS, FORMAT_DEFAULTS, STORAGE_SCHEME
from generator.engine.sizing import RESOLUTIONS
from generator.models import ApiKey, EngineConnection, Generation, Membership, Storage
from generator.wording import plain

COLOUR_CHOICE = "colour"
BACKGROUND_CHOICES = list(
    zip(
        BACKGROUNDS,
        ["Automatic (extend a plain background, else blur)", "Blurred photo", "Extend the border colour"],
        strict=True,
    )
)


class GenerateForm(forms.Form):
    """The Generate page; field errors come back from the API's validator in the API's words."""

    SOURCE_CHOICES = [
        ("url", "Image URL"),
        ("storage", "From a storage"),
        ("upload", "Upload"),
    ]
    PROMPT_CHOICES = [
        ("text", "Describe the motion"),
        ("auto", "Auto (let the engine choose)"),
    ]
    OUTPUT_CHOICES = [
        ("temporary", "Temporary link (24 hours)"),
        ("storage", "Save to a storage"),
    ]

    source = forms.ChoiceField(choices=SOURCE_CHOICES, initial="url", widget=forms.RadioSelect)
    url = forms.CharField(required=False, label="Image URL", max_length=2000)
    storage_input = forms.CharField(required=False, label="Storage file", max_length=2000)
    upload = forms.FileField(required=False, label="Image file")
    prompt_mode = forms.ChoiceField(choices=PROMPT_CHOICES, initial="text", widget=forms.RadioSelect)
    prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Prompt")
    guidelines = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Guidelines")
    negative_prompt = forms.CharField(required=False, label="Negative prompt")
    duration = forms.TypedChoiceField(
        choices=[(5, "5 seconds"), (10, "10 seconds")],
        coerce=int,
        initial=5,
        widget=forms.RadioSelect,
    )
    guidance_scale = forms.FloatField(initial=0.5, label="Guidance", required=False)
    output_mode = forms.ChoiceField(choices=OUTPUT_CHOICES, initial="temporary", widget=forms.RadioSelect)
    output_storage = forms.CharField(required=False, label="Storage")
    output_path = forms.CharField(required=False, label="Path or folder", max_length=1024)
    # The format options: any value reaches the API's validator, which words the error (docs/formats.md).
    aspect_ratio = forms.CharField(
        required=False, label="Shape", widget=forms.RadioSelect(choices=Generation.AspectRatio.choices)
    )
    resolution = forms.CharField(
        required=False,
        label="Resolution",
        widget=forms.RadioSelect(choices=[(value, value) for value in RESOLUTIONS]),
    )
    loop = forms.BooleanField(required=False, label="Seamless loop")
    background = forms.CharField(
        required=False,
        label="Background",
        widget=forms.Select(choices=[*BACKGROUND_CHOICES, (COLOUR_CHOICE, "A colour")]),
    )
    background_colour = forms.CharField(
        required=False, label="Background colour", max_length=20, widget=forms.TextInput(attrs={"type": "color"})
    )
    # builtin or a connection's name (options.engine); the page preselects the team's default.
    engine = forms.CharField(required=False, max_length=50, label="Engine")
    # Names this filled-in form: sent twice, it starts one job (services/submissions.py).
    token = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    DEFAULTS = {
        "source": "url",
        "prompt_mode": "text",
        "duration": 5,
        "output_mode": "temporary",
        **FORMAT_DEFAULTS,
        "background_colour": "#FFFFFF",
    }

    def clean(self) -> dict:
        data = super().clean() or {}
        if data.get("source") == "upload" and not data.get("upload") and "upload" not in self.errors:
            self.add_error("upload", "Choose a photo to upload (JPEG, PNG, WEBP or HEIC).")
        return data

    @classmethod
    def initial_for_input(cls, value: str) -> dict:
        """Return the initial values that put `value` (a URL or storage:// URI) in the right photo field."""
        if value.startswith(STORAGE_SCHEME):
            return {"source": "storage", "storage_input": value}
        return {"source": "url", "url": value}

    @classmethod
    def initial_from_request(cls, body: dict) -> dict:
        """Return the initial values of a form that stands for a stored API request (to edit and resend it)."""
        options = body.get("options") or {}
        prompt = options.get("prompt")
        initial: dict = {**cls.DEFAULTS, **cls.initial_for_input(str(body.get("input") or ""))}
        if isinstance(prompt, dict):
            initial.update(prompt_mode="auto", guidelines=prompt.get("guidelines") or "")
        else:
            initial.update(prompt_mode="text", prompt=prompt or "")
        initial.update(
            negative_prompt=options.get("negative_prompt") or "",
            duration=options.get("duration", 5),
            guidance_scale=options.get("guidance_scale", 0.5),
        )
        initial.update(cls._format_initial(options))
        if options.get("engine"):
            initial["engine"] = options["engine"]
        output = body.get("output")
        if isinstance(output, str) and output.startswith(STORAGE_SCHEME):
            name, _, path = output[len(STORAGE_SCHEME) :].partition("/")
            initial.update(output_mode="storage", output_storage=name, output_path=path)
        return initial

    def to_body(self, *, input_value: str) -> dict:
        """Build the API body this form stands for."""
        data = self.cleaned_data
        options: dict = {"duration": data["duration"]}
        if data["prompt_mode"] == "auto":
            auto: dict = {"generate": True}
            if data["guidelines"].strip():
                auto["guidelines"] = data["guidelines"].strip()
            options["prompt"] = auto
        else:
            options["prompt"] = data["prompt"].strip()
        if data["negative_prompt"].strip():
            options["negative_prompt"] = data["negative_prompt"].strip()
        if data["guidance_scale"] is not None:
            options["guidance_scale"] = data["guidance_scale"]
        options.update(self._format_options())
        if data["engine"].strip():
            options["engine"] = data["engine"].strip()
        body: dict = {"input": input_value, "options": options}
        if data["output_mode"] == "storage":
            path = data["output_path"].strip().lstrip("/")
            body["output"] = f"storage://{data['output_storage'].strip()}/{path}"
        return body

    @staticmethod
    def _format_initial(options: dict) -> dict:
        """The format fields for a stored request's options (defaults for a request without them)."""
        chosen = {name: options.get(name, default) for name, default in FORMAT_DEFAULTS.items()}
        if chosen["background"] not in BACKGROUNDS:
            chosen["background_colour"], chosen["background"] = chosen["background"], COLOUR_CHOICE
        return chosen

    def _format_options(self) -> dict:
        """The format options that differ from their defaults: a form left alone sends none (an unchanged echo)."""
        data = self.cleaned_data
        chosen = {
            "aspect_ratio": data["aspect_ratio"] or FORMAT_DEFAULTS["aspect_ratio"],
            "resolution": data["resolution"] or FORMAT_DEFAULTS["resolution"],
            "loop": data["loop"],
            "background": data["background"] or FORMAT_DEFAULTS["background"],
        }
        if chosen["background"] == COLOUR_CHOICE:
            chosen["background"] = data["background_colour"].strip()
        return {name: value for name, value in chosen.items() if value != FORMAT_DEFAULTS[name]}

    def add_api_errors(self, details: dict[str, list[str]]) -> None:
        """Attach the API's error details (keyed by dotted field) to the matching form fields."""
        source = self.cleaned_data.get("source", "url")
        for key, messages in details.items():
            field = _FIELD_FOR_DETAIL.get(key)
            if field is None:
                field = next(
                    (f for prefix, f in _FIELD_FOR_DETAIL.items() if key.startswith(prefix + ".")),
                    None,
                )
            if field == "input":
                field = {"url": "url", "storage": "storage_input", "upload": "upload"}[source]
            if field == "output_path" and self.cleaned_data.get("output_mode") != "storage":
                field = None
            if field == "background" and self.cleaned_data.get("background") == COLOUR_CHOICE:
                field = "background_colour"
            target = field if field in self.fields else None
            for message in messages:
                self.add_error(target, plain(target, message, value=str(self.data.get(target or "", ""))))


_FIELD_FOR_DETAIL = {
    "input": "input",
    "output": "output_path",
    "options.prompt.guidelines": "guidelines",
    "options.prompt.text": "prompt",
    "options.prompt.generate": "prompt",
    "options.prompt": "prompt",
    "options.negative_prompt": "negative_prompt",
    "options.duration": "duration",
    "options.guidance_scale": "guidance_scale",
    "options.aspect_ratio": "aspect_ratio",
    "options.resolution": "resolution",
    "options.loop": "loop",
    "options.background": "background",
    "options.engine": "engine",
}


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files under one name (Django's documented recipe); cleans to a list."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


class BatchForm(GenerateForm):
    """The Batch mode of the Generate page: many images, one set of options (the service checks each input)."""

    BATCH_SOURCE_CHOICES = [
        ("folder", "A storage folder"),
        ("list", "A list of URLs"),
        ("files", "Upload files"),
    ]

    batch_source = forms.ChoiceField(choices=BATCH_SOURCE_CHOICES, initial="folder", widget=forms.RadioSelect)
    input_folder = forms.CharField(required=False, label="Folder", max_length=1100)
    recursive = forms.BooleanField(required=False, label="Include subfolders")
    url_list = forms.CharField(
        required=False, label="Image URLs", widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"})
    )
    url_file = forms.FileField(required=False, label="Or a CSV or text file")
    images = MultipleFileField(
        required=False, label="Image files", widget=MultipleFileInput(attrs={"accept": "image/*"})
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["source"].required = False  # the single video's photo source is not part of a batch

    def to_batch_body(self) -> dict:
        """Build the batch API body's options and output; the view adds the inputs."""
        body = self.to_body(input_value="")
        body.pop("input")
        return body

    def add_api_errors(self, details: dict[str, list[str]]) -> None:
        """Attach the batch API's details: inputs.<i> and CSV lines to the list (or files), the rest as one video's."""
        source = self.cleaned_data.get("batch_source", "folder")
        inputs_field = {"folder": "input_folder", "files": "images"}.get(source, "url_list")
        rest: dict[str, list[str]] = {}
        for key, messages in details.items():
            head, _, index = key.partition(".")
            if head == "inputs" and index.isdigit():
                label = "File" if source == "files" else "Entry"
                for message in messages:
                    self.add_error(inputs_field, f"{label} {int(index) + 1}: {message}")
            elif key.startswith("line "):
                for message in messages:
                    self.add_error("url_list", f"{key[:1].upper()}{key[1:]}: {message}")
            elif key in {"inputs", "input_folder", "images", "recursive"}:
                for message in messages:
                    self.add_error(inputs_field if key != "recursive" else "recursive", message)
            else:
                rest[key] = messages
        if rest:
            super().add_api_errors(rest)


class StorageForm(forms.Form):
    """Connect a storage; parameters and credentials are assembled into the API's shape."""

    name = forms.CharField(max_length=50, help_text="Letters, digits, - and _; used in storage://name/...")
    type = forms.ChoiceField(choices=Storage.Type.choices)
    bucket = forms.CharField(required=False, max_length=255)
    path = forms.CharField(required=False, max_length=1024, label="Path prefix")
    region = forms.CharField(required=False, max_length=64)
    endpoint_url = forms.CharField(required=False, max_length=512, label="Endpoint URL")
    access_key = forms.CharField(required=False, max_length=256, label="Access key")
    secret_access_key = forms.CharField(
        required=False,
        max_length=512,
        label="Secret access key",
        # Kept after an error (the page is no-store): retyping a 40-character secret is where work is lost.
        widget=forms.PasswordInput(render_value=True),
    )
    service_account = forms.CharField(
        required=False,
        label="Service account key (JSON)",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, types: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if types is not None:
            type_field = self.fields["type"]
            assert isinstance(type_field, forms.ChoiceField)
            type_field.choices = [c for c in Storage.Type.choices if c[0] in types]

    def connection(self) -> dict:
        """Return storage_create's arguments for what was typed."""
        return {
            "name": self.cleaned_data["name"].strip(),
            "type": self.cleaned_data["type"],
            "parameters": self.parameters(),
        }

    def parameters(self) -> dict:
        """Return the parameters object of the storages API for this form."""
        data = self.cleaned_data
        kind = data["type"]
        params: dict = {}
        if data["path"].strip():
            params["path"] = data["path"].strip()
        if kind == Storage.Type.LOCAL:
            return params
        params["bucket"] = data["bucket"].strip()
        for name in ("region", "endpoint_url"):
            if data[name].strip() and (name != "region" or kind == Storage.Type.S3):
                params[name] = data[name].strip()
        if kind == Storage.Type.GCS and data["service_account"].strip():
            try:
                params["credentials"] = {"service_account": json.loads(data["service_account"])}
            except ValueError:
                params["credentials"] = {"service_account": data["service_account"]}
        elif data["access_key"].strip() or data["secret_access_key"]:
            params["credentials"] = {
                "access_key": data["access_key"].strip(),
                "secret_access_key": data["secret_access_key"],
            }
        return params

    def add_api_errors(self, details: dict[str, list[str]]) -> None:
        for key, messages in details.items():
            leaf = key.split(".")[-1]
            field = key if key in self.fields else (leaf if leaf in self.fields else None)
            if key.startswith("parameters.credentials"):
                field = "service_account" if "service_account" in key else "secret_access_key"
                if key.endswith(".access_key"):
                    field = "access_key"
            for message in messages:
                if key == "parameters":  # the connection test itself failed: say so, then the storage's reason
                    message = f"We could not connect with these details. The storage answered: {message}"
                self.add_error(field, plain(field, message, value=str(self.data.get(field or "", ""))))


class EngineForm(forms.Form):
    """Connect an engine; its fields are assembled into the engines API's body (contract/engines.py)."""

    name = forms.CharField(
        max_length=50, help_text="Letters, digits, - and _; what options.engine and the Generate page call it"
    )
    type = forms.ChoiceField(choices=EngineConnection.Type.choices)
    api_key = forms.CharField(
        max_length=512,
        required=False,
        label="API key",
        # Kept after an error (the page is no-store), as a bucket's secret is.
        widget=forms.PasswordInput(render_value=True),
    )
    model = forms.CharField(
        required=False, max_length=200, label="Model", widget=forms.TextInput(attrs={"list": "engine-models"})
    )
    base_url = forms.CharField(required=False, max_length=512, label="API address")
    inputs = forms.CharField(
        required=False, label="Input template (JSON)", widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"})
    )

    def __init__(self, *args, types: list[str] | None = None, model_types: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if types is not None:
            type_field = self.fields["type"]
            assert isinstance(type_field, forms.ChoiceField)
            type_field.choices = [c for c in EngineConnection.Type.choices if c[0] in types]
        self.model_types = model_types

    def connection(self) -> dict:
        """Return engine_create's arguments for what was typed."""
        data = self.cleaned_data
        return {
            "name": data["name"].strip(),
            "type": data["type"],
            "api_key": data["api_key"],
            "parameters": self.parameters(),
        }

    def parameters(self) -> dict:
        """Return the parameters object of the engines API for this form (empty fields left out).

        The model field is shown only for types that take a model; a value left in it when
        another type was chosen is not sent.
        """
        data = self.cleaned_data
        params: dict = {name: data[name].strip() for name in ("model", "base_url") if data[name].strip()}
        if self.model_types is not None and data["type"] not in self.model_types:
            params.pop("model", None)
        if data["inputs"].strip():
            try:
                params["inputs"] = json.loads(data["inputs"])
            except ValueError:
                params["inputs"] = data["inputs"]  # the contract says what is wrong with it
        return params

    def add_api_errors(self, details: dict[str, list[str]]) -> None:
        for key, messages in details.items():
            field = _ENGINE_FIELD_FOR_DETAIL.get(key, key.split(".")[-1])
            target = field if field in self.fields else None
            for message in messages:
                if key == "credentials":  # the connection test itself failed: say so, then the upstream's reason
                    message = f"We could not connect with these details. The engine answered: {message}"
                elif target and message.startswith(("is ", "must ")):  # a rule about the field: name it
                    message = f"{self.fields[target].label} {message}"
                self.add_error(target, plain(target, message, value=str(self.data.get(target or "", ""))))


_ENGINE_FIELD_FOR_DETAIL = {"credentials": "api_key", "credentials.api_key": "api_key"}


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        required=False,
        help_text="What uses this key, e.g. “shop import script”",
    )
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        initial=[c[0] for c in ApiKey.Scope.choices],
        widget=forms.CheckboxSelectMultiple,
    )


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)


class WebhookForm(forms.Form):
    webhook_url = forms.CharField(
        required=False,
        max_length=2000,
        label="URL",
        help_text="Leave empty and save to turn webhooks off.",
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/hooks/video"}),
    )


class MemberForm(forms.Form):
    # A role change saves on its own (app.js submits the row's form); the row's Save button covers no-JS.
    role = forms.ChoiceField(choices=Membership.Role.choices, widget=forms.Select(attrs={"data-autosubmit": ""}))
    monthly_cap = forms.IntegerField(required=False, min_value=0, label="Monthly cap (credits)")


class InviteAcceptForm(forms.Form):
    name = forms.CharField(max_length=150, required=False, label="Your name")
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password again", widget=forms.PasswordInput, strip=False)

    def clean(self):
        cleaned = super().clean() or {}
        if cleaned.get("password1") and cleaned.get("password1") != cleaned.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return cleaned


class GrantCreditsForm(forms.Form):
    """The admin's grant-or-deduct form; negative amounts deduct."""

    amount = forms.IntegerField(help_text="Positive to grant, negative to deduct")
    reason = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"size": 60}))

    def clean_amount(self) -> int:
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("Enter a non-zero amount.")
        return amount

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("A reason is required.")
        return reason
