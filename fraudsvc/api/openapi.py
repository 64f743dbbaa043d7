"""OpenAPI details Litestar does not derive by itself.

- Request structs refuse unknown fields (msgspec `forbid_unknown_fields`), but Litestar's struct
  schema plugin does not say so; without `additionalProperties: false` the published schema would
  promise that extra fields are accepted (schemathesis caught it).
- Some fields are checked in `__post_init__` so that the error names the field and its rule
  (the amount's decimals, the ISO code lists, the channel, the attributes' keys); their msgspec
  `Meta(extra_json_schema=...)` says what they accept, and Litestar ignores it: it is applied
  here, so the published schema says exactly what the service accepts.
"""

from __future__ import annotations

import re
import types
import typing
from typing import TYPE_CHECKING, Any

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.typing import FieldDefinition

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_RENAMED = {"not": "schema_not", "if": "schema_if", "else": "schema_else"}


def schema_from_json(spec: dict[str, Any]) -> Schema:
    """A Litestar Schema from a JSON Schema mapping (camelCase keys, nested schemas)."""
    fields: dict[str, Any] = {}
    for key, value in spec.items():
        name = _RENAMED.get(key, _CAMEL.sub("_", key).lower())
        if name == "type":
            value = (
                [OpenAPIType(v) for v in value] if isinstance(value, list) else OpenAPIType(value)
            )
        elif name in ("any_of", "one_of", "all_of"):
            value = [schema_from_json(v) for v in value]
        elif name in ("property_names", "items") or (
            name == "additional_properties" and isinstance(value, dict)
        ):
            value = schema_from_json(value)
        fields[name] = value
    return Schema(**fields)


def _extra_schema(annotation: Any) -> tuple[dict[str, Any] | None, bool]:
    """The field's `extra_json_schema`, and whether the field may be null."""
    optional = False
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = typing.get_args(annotation)
        optional = type(None) in args
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            return None, optional
        annotation = rest[0]
    if typing.get_origin(annotation) is typing.Annotated:
        for meta in typing.get_args(annotation)[1:]:
            # Litestar applies an `extra` mapping by itself (the timestamp's year pattern)
            if isinstance(meta, msgspec.Meta) and meta.extra_json_schema:
                if "extra" in meta.extra_json_schema:
                    return None, optional
                return dict(meta.extra_json_schema), optional
    return None, optional


class StrictStructSchemaPlugin(StructSchemaPlugin):
    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        if not super().is_plugin_supported_field(field_definition):
            return False
        return bool(field_definition.type_.__struct_config__.forbid_unknown_fields)

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        schema.additional_properties = False
        hints = typing.get_type_hints(field_definition.type_, include_extras=True)
        for name, prop in (schema.properties or {}).items():
            extra, optional = _extra_schema(hints.get(name))
            if extra is None or not isinstance(prop, Schema):
                continue
            exact = schema_from_json(extra)
            if optional:
                schema.properties[name] = Schema(  # type: ignore[index]
                    one_of=[exact, Schema(type=OpenAPIType.NULL)],
                    description=prop.description,
                    examples=prop.examples,
                )
            else:
                exact.description = exact.description or prop.description
                exact.examples = exact.examples or prop.examples
                schema.properties[name] = exact  # type: ignore[index]
        return schema
